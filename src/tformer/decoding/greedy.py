"""Greedy decoding, batched and incremental with the key/value cache."""

from __future__ import annotations

import torch
from torch import Tensor

from tformer.decoding import native_search
from tformer.decoding.interface import EncoderDecoderModel
from tformer.decoding.search import Hypothesis, output_limits, restrict_to_eos, should_prune


@torch.inference_mode()
def greedy_search(
    model: EncoderDecoderModel, src: Tensor, max_len_a: float = 1.5, max_len_b: int = 10
) -> list[Hypothesis]:
    """Pick the most probable token at every step until EOS or the length limit.

    Args:
        src: (batch, src_len) padded source ids.
    Returns:
        one Hypothesis per source row. A row's result does not depend on the rest of the batch.
    """
    cfg = model.config
    prepared = native_search.prepare(model, src)
    if not isinstance(prepared, str):  # one sentence: the same loop in C++
        tokens, log_probs = native_search.greedy(model, prepared, src, max_len_a, max_len_b)  # type: ignore[arg-type]
        return hypotheses(tokens, log_probs, cfg.eos_id)
    batch = src.size(0)
    limits = output_limits(src, cfg.pad_id, cfg.max_len, max_len_a, max_len_b)  # (batch,)
    steps, first_limit = int(limits.max()) + 1, int(limits.min())
    encoded = model.encode(src)
    cache = model.new_cache(capacity=steps)
    token = torch.full((batch, 1), cfg.bos_id, dtype=torch.long, device=src.device)
    tokens = torch.full((batch, steps), cfg.eos_id, dtype=torch.long)
    log_probs = torch.zeros(batch, steps)
    alive = torch.arange(batch)  # rows of the original batch still in the decoding batch, in its order
    done = torch.zeros(batch, dtype=torch.bool)  # (alive,) rows that have emitted EOS
    for step in range(steps):
        lp = model.next_token_log_probs(token, cache, encoded).cpu()  # (alive, vocab)
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
    return hypotheses(tokens, log_probs, cfg.eos_id)


def hypotheses(tokens: Tensor, log_probs: Tensor, eos_id: int) -> list[Hypothesis]:
    """One Hypothesis per row of the chosen ``tokens`` (batch, steps) and their ``log_probs``, up to each row's
    first EOS."""
    lengths = tokens.eq(eos_id).int().argmax(dim=1)  # (batch,) position of each row's first EOS
    return [
        Hypothesis(tokens[i, : lengths[i]].tolist(), float(log_probs[i, : lengths[i] + 1].sum()),
                   log_probs[i, : lengths[i] + 1].tolist())
        for i in range(tokens.size(0))
    ]
