"""Beam search, batched and vectorised: every sentence keeps ``beam`` hypotheses in consecutive rows.

A hypothesis that emits EOS is frozen: its only continuation is EOS again at log-probability 0, so its score
stays fixed and it keeps competing for a place in the beam. Decoding ends when every row is frozen. Hypotheses
are ranked by score / length ** length_penalty (length counts EOS).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tformer.decoding.greedy import Hypothesis, max_output_length, restrict_to_eos
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.nn.outputs import EncoderOutput


@torch.inference_mode()
def beam_search(
    model: Seq2SeqTransformer,
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
    limits = torch.tensor([max_output_length(int(n), cfg.max_len, max_len_a, max_len_b)
                           for n in src.ne(cfg.pad_id).sum(1)]).repeat_interleave(k)  # (batch * beam,)
    steps = int(limits.max()) + 1
    encoded = model.encode(src)
    encoded = EncoderOutput(encoded.memory.repeat_interleave(k, 0), encoded.src_mask.repeat_interleave(k, 0))
    cache = model.new_cache(capacity=steps + 1)
    tokens = torch.full((batch * k, steps + 1), cfg.pad_id, dtype=torch.long)  # BOS + generated
    tokens[:, 0] = cfg.bos_id
    step_lp = torch.zeros(batch * k, steps)  # log-probability of each generated token
    lengths = torch.zeros(batch * k, dtype=torch.long)  # generated tokens, EOS included
    finished = torch.zeros(batch * k, dtype=torch.bool)
    scores = torch.full((batch, k), float("-inf"))
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    rows = torch.arange(batch)[:, None] * k  # (batch, 1)
    first_limit, any_finished = int(limits.min()), False
    for t in range(steps):
        step_input = tokens[:, t : t + 1].to(src.device)
        lp = model.output.log_probs(model.decode(step_input, encoded, cache).hidden[:, -1]).cpu()
        if t >= first_limit:  # some row must end now
            restrict_to_eos(lp, finished, (limits <= t) & ~finished, cfg.eos_id)
        elif any_finished:
            lp = freeze_finished(lp, finished, cfg.eos_id)
        vocab = lp.size(-1)
        top_scores, top = (scores.reshape(-1, 1) + lp).view(batch, k * vocab).topk(k, dim=1)  # (batch, beam)
        beam_index = (rows + top // vocab).view(-1)  # (batch * beam,) rows of the previous step
        token = (top % vocab).view(-1)
        was_finished = finished[beam_index]
        tokens, step_lp, lengths = tokens[beam_index], step_lp[beam_index], lengths[beam_index]
        tokens[:, t + 1] = torch.where(was_finished, cfg.pad_id, token)
        step_lp[:, t] = torch.where(was_finished, 0.0, lp[beam_index, token])
        lengths += (~was_finished).long()
        finished = was_finished | token.eq(cfg.eos_id)
        scores = top_scores
        cache.reorder(beam_index.to(src.device))
        num_finished = int(finished.sum())  # the step's one host sync
        if num_finished == finished.numel():
            break
        any_finished = num_finished > 0
    return _collect(tokens, step_lp, lengths, scores.view(-1), batch, k, length_penalty, nbest)


def freeze_finished(log_probs: Tensor, finished: Tensor, eos_id: int) -> Tensor:
    """``restrict_to_eos`` for finished rows only, without host syncs: their one continuation is EOS at log-prob 0.

    Args:
        log_probs: (rows, vocab); finished: (rows,) bool.
    """
    frozen = log_probs.masked_fill(finished[:, None], float("-inf"))
    frozen[:, eos_id] = torch.where(finished, 0.0, log_probs[:, eos_id])
    return frozen


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
