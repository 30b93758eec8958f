"""Greedy decoding, batched and incremental with the key/value cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tformer.models.seq2seq import Seq2SeqTransformer


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, without BOS and EOS
    score: float  # sum of log-probabilities of the tokens and EOS
    step_log_probs: list[float]  # one per generated token, EOS included; they sum to ``score``
    normalized_score: float | None = None  # score / length ** length_penalty (beam search)


def max_output_length(src_len: int, max_len: int, a: float = 1.5, b: int = 10) -> int:
    """Longest output allowed for a source of ``src_len`` tokens: a * src_len + b, capped by the model."""
    return min(int(a * src_len + b), max_len - 1)


def restrict_to_eos(log_probs: Tensor, finished: Tensor, at_limit: Tensor, eos_id: int) -> None:
    """In place on (rows, vocab): finished rows may only repeat EOS at log-probability 0; rows at their length
    limit may only end, with EOS at its own log-probability."""
    eos = log_probs[:, eos_id].clone()
    log_probs[finished | at_limit] = float("-inf")
    log_probs[at_limit, eos_id] = eos[at_limit]
    log_probs[finished, eos_id] = 0.0


def should_prune(finished: int, rows: int) -> bool:
    """Whether to drop finished rows from a decoding batch now: copying the caches costs about one decoding step,
    so wait until an eighth of the rows (and at least one) has finished."""
    return finished > 0 and finished * 8 >= rows


@torch.inference_mode()
def greedy_search(
    model: Seq2SeqTransformer, src: Tensor, max_len_a: float = 1.5, max_len_b: int = 10
) -> list[Hypothesis]:
    """Pick the most probable token at every step until EOS or the length limit.

    Args:
        src: (batch, src_len) padded source ids.
    Returns:
        one Hypothesis per source row. A row's result does not depend on the rest of the batch.
    """
    cfg = model.config
    batch = src.size(0)
    src_lens = src.ne(cfg.pad_id).sum(1)
    limits = torch.tensor([max_output_length(int(n), cfg.max_len, max_len_a, max_len_b) for n in src_lens])
    steps, first_limit = int(limits.max()) + 1, int(limits.min())
    encoded = model.encode(src)
    cache = model.new_cache(capacity=steps)
    token = torch.full((batch, 1), cfg.bos_id, dtype=torch.long, device=src.device)
    tokens = torch.full((batch, steps), cfg.eos_id, dtype=torch.long)
    log_probs = torch.zeros(batch, steps)
    alive = torch.arange(batch)  # rows of the original batch still in the decoding batch, in its order
    done = torch.zeros(batch, dtype=torch.bool)  # (alive,) rows that have emitted EOS
    for step in range(steps):
        lp = model.output.log_probs(model.decode(token, encoded, cache).hidden[:, -1]).cpu()  # (alive, vocab)
        if step >= first_limit:  # some row may have to end now
            at_limit = limits[alive] <= step
            restrict_to_eos(lp, torch.zeros_like(at_limit), at_limit, cfg.eos_id)
        best_lp, best = lp.max(dim=-1)  # (alive,)
        tokens[alive, step], log_probs[alive, step] = best, best_lp
        done |= best.eq(cfg.eos_id)  # rows that ended keep decoding until pruned; that output is ignored
        n_done = int(done.sum())  # the step's one host sync
        if n_done == alive.numel():
            break
        if should_prune(n_done, alive.numel()):
            keep = (~done).nonzero()[:, 0]  # drop finished rows from the batch and every cache
            alive, best, done = alive[keep], best[keep], done[keep]
            encoded = encoded.select(keep.to(src.device))
            cache.select(keep.to(src.device))
        token = best[:, None].to(src.device)
    lengths = tokens.eq(cfg.eos_id).int().argmax(dim=1)  # (batch,) position of each row's first EOS
    return [
        Hypothesis(tokens[i, : lengths[i]].tolist(), float(log_probs[i, : lengths[i] + 1].sum()),
                   log_probs[i, : lengths[i] + 1].tolist())
        for i in range(batch)
    ]
