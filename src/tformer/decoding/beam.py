"""Beam search, batched and vectorised: every sentence keeps ``beam`` hypotheses in consecutive rows.

A hypothesis that emits EOS is frozen: its only continuation is EOS again at log-probability 0, so its score
stays fixed and it keeps competing for a place in the beam. A sentence whose hypotheses are all frozen is final;
once an eighth of the batch is final, those sentences leave the batch and the caches (``should_prune``). Decoding
ends when every sentence is final. Hypotheses are ranked by score / length ** length_penalty (length counts EOS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tformer.decoding import native_search
from tformer.decoding.interface import EncoderDecoderModel
from tformer.decoding.search import (
    Hypothesis,
    freeze_finished,
    output_limits,
    restrict_to_eos,
    should_prune,
    top_of_sums,
)


@torch.inference_mode()
def beam_search(
    model: EncoderDecoderModel,
    src: Tensor,
    beam: int = 4,
    length_penalty: float = 1.0,
    nbest: int = 1,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
) -> list[list[Hypothesis]]:
    """
    Args:
        src: (batch, src_len) padded source ids.
    Returns:
        per source row, the ``nbest`` best hypotheses, best first.
    """
    if beam < 1 or not 1 <= nbest <= beam:
        raise ValueError(f"need beam >= 1 and 1 <= nbest <= beam, got beam={beam}, nbest={nbest}")
    cfg = model.config
    batch, k = src.size(0), beam
    prepared = native_search.prepare(model, src)
    if not isinstance(prepared, str):  # one sentence: the same loop in C++
        found = native_search.beam(model, prepared, src, k, max_len_a, max_len_b)  # type: ignore[arg-type]
        return _collect(*found, 1, k, length_penalty, nbest)
    limits = output_limits(src, cfg.pad_id, cfg.max_len, max_len_a, max_len_b).repeat_interleave(k)  # (batch * beam,)
    steps = int(limits.max()) + 1
    encoded = model.encode(src).select(torch.arange(batch, device=src.device).repeat_interleave(k))  # beam rows each
    cache = model.new_cache(capacity=steps + 1)
    tokens = torch.full((batch * k, steps + 1), cfg.pad_id, dtype=torch.long)  # BOS + generated
    tokens[:, 0] = cfg.bos_id
    step_lp = torch.zeros(batch * k, steps)  # log-probability of each generated token
    lengths = torch.zeros(batch * k, dtype=torch.long)  # generated tokens, EOS included
    finished = torch.zeros(batch * k, dtype=torch.bool)
    scores = torch.full((batch, k), float("-inf"))
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    first_limit, any_finished = int(limits.min()), False
    out = BeamResults(tokens.clone(), step_lp.clone(), lengths.clone(), scores.view(-1).clone())
    alive = torch.arange(batch)  # sentences still in the decoding batch, in its order
    n, rows = batch, torch.arange(batch)[:, None] * k  # sentences in the batch; (n, 1) first row of each
    for t in range(steps):
        step_input = tokens[:, t : t + 1].to(src.device)
        lp = model.next_token_log_probs(step_input, cache, encoded).cpu()  # (alive * beam, vocab)
        if t >= first_limit:  # some row may have to end now
            restrict_to_eos(lp, finished, (limits <= t) & ~finished, cfg.eos_id)
        elif any_finished:
            lp = freeze_finished(lp, finished, cfg.eos_id)
        vocab = lp.size(-1)
        top_scores, top = top_of_sums(scores, lp)  # (alive, beam)
        beam_index = (rows + top // vocab).view(-1)  # (alive * beam,) rows of the previous step
        token = (top % vocab).view(-1)
        was_finished = finished[beam_index]
        tokens, step_lp, lengths = tokens[beam_index], step_lp[beam_index], lengths[beam_index]
        tokens[:, t + 1] = torch.where(was_finished, cfg.pad_id, token)
        step_lp[:, t] = torch.where(was_finished, 0.0, lp[beam_index, token])
        lengths += (~was_finished).long()
        finished = was_finished | token.eq(cfg.eos_id)
        scores = top_scores
        cache.reorder(beam_index.to(src.device))
        sentence_done = finished.view(n, k).all(dim=1)  # (alive,) every hypothesis frozen: the result is final
        n_done, n_finished = torch.stack((sentence_done.sum(), finished.sum())).tolist()  # the step's one host sync
        if n_done == n:
            break
        any_finished = n_finished > 0
        if should_prune(n_done, n):  # move finished sentences out, drop them from the batch and every cache
            done, keep = sentence_done.nonzero()[:, 0], (~sentence_done).nonzero()[:, 0]
            out.store(_rows(alive[done], k), _rows(done, k), tokens, step_lp, lengths, scores.view(-1))
            keep_rows = _rows(keep, k)
            tokens, step_lp, lengths = tokens[keep_rows], step_lp[keep_rows], lengths[keep_rows]
            finished, limits, scores, alive = finished[keep_rows], limits[keep_rows], scores[keep], alive[keep]
            encoded = encoded.select(keep_rows.to(src.device))
            cache.select(keep_rows.to(src.device))
            n, rows = alive.numel(), torch.arange(alive.numel())[:, None] * k
    out.store(_rows(alive, k), _rows(torch.arange(n), k), tokens, step_lp, lengths, scores.view(-1))
    return _collect(out.tokens, out.step_lp, out.lengths, out.scores, batch, k, length_penalty, nbest)


@dataclass
class BeamResults:
    """Full-batch buffers that finished sentences are copied into: (batch * beam, ...) as in the decoding batch."""

    tokens: Tensor
    step_lp: Tensor
    lengths: Tensor
    scores: Tensor

    def store(self, to_rows: Tensor, from_rows: Tensor, tokens: Tensor, step_lp: Tensor, lengths: Tensor,
              scores: Tensor) -> None:
        self.tokens[to_rows], self.step_lp[to_rows] = tokens[from_rows], step_lp[from_rows]
        self.lengths[to_rows], self.scores[to_rows] = lengths[from_rows], scores[from_rows]


def _rows(sentences: Tensor, k: int) -> Tensor:
    """The ``k`` consecutive rows of each sentence index: (sentences * k,)."""
    return (sentences[:, None] * k + torch.arange(k)).view(-1)


def _collect(
    tokens: Tensor, step_lp: Tensor, lengths: Tensor, scores: Tensor, batch: int, k: int, alpha: float, nbest: int
) -> list[list[Hypothesis]]:
    normalized = scores / lengths.clamp(min=1).double().pow(alpha).float()  # (batch * beam,)
    results = []
    for b in range(batch):
        order = normalized[b * k : (b + 1) * k].argsort(descending=True)[:nbest] + b * k
        hyps = []
        for row in order.tolist():
            n = int(lengths[row])
            hyps.append(Hypothesis(tokens[row, 1:n].tolist(), float(step_lp[row, :n].sum()), step_lp[row, :n].tolist(),
                                   normalized_score=float(normalized[row])))
        results.append(hyps)
    return results
