"""What greedy and beam search share: the hypothesis they return, the length limit, EOS handling, beam search's
choice of continuations, and when to drop finished rows from the decoding batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tformer.nn import kernels


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, without BOS and EOS
    score: float  # sum of log-probabilities of the tokens and EOS
    step_log_probs: list[float]  # one per generated token, EOS included; they sum to ``score``
    normalized_score: float | None = None  # score / length ** length_penalty (beam search)


def max_output_length(src_len: int, max_len: int, a: float = 1.5, b: int = 10) -> int:
    """Longest output allowed for a source of ``src_len`` tokens: a * src_len + b, capped by the model."""
    return min(int(a * src_len + b), max_len - 1)


def output_limits(src: Tensor, pad_id: int, max_len: int, a: float = 1.5, b: int = 10) -> Tensor:
    """``max_output_length`` of every row of ``src`` (batch, src_len), counting its non-pad tokens: (batch,)."""
    return torch.tensor([max_output_length(int(n), max_len, a, b) for n in src.ne(pad_id).sum(1)])


def restrict_to_eos(log_probs: Tensor, finished: Tensor, at_limit: Tensor, eos_id: int) -> None:
    """In place on (rows, vocab): finished rows may only repeat EOS at log-probability 0; rows at their length
    limit may only end, with EOS at its own log-probability."""
    eos = log_probs[:, eos_id].clone()
    log_probs[finished | at_limit] = float("-inf")
    log_probs[at_limit, eos_id] = eos[at_limit]
    log_probs[finished, eos_id] = 0.0


def freeze_finished(log_probs: Tensor, finished: Tensor, eos_id: int) -> Tensor:
    """``restrict_to_eos`` for finished rows only, without host syncs: their one continuation is EOS at log-prob 0.

    Args:
        log_probs: (rows, vocab); finished: (rows,) bool.
    """
    frozen = log_probs.masked_fill(finished[:, None], float("-inf"))
    frozen[:, eos_id] = torch.where(finished, 0.0, log_probs[:, eos_id])
    return frozen


def top_of_sums(scores: Tensor, log_probs: Tensor) -> tuple[Tensor, Tensor]:
    """Beam search's choice for each of n sentences with k hypotheses: the k largest of scores[s, i] +
    log_probs[s * k + i, v], largest first, with their flat indices i * vocab + v. scores: (n, k); log_probs:
    (n * k, vocab). Returns values (n, k) and indices (n, k).

    The native extension's one-pass kernel (``top_of_sums`` in decoder_step.cpp) when this process has loaded it,
    as the C++ beam loop does; else ``torch.topk`` over the (n, k * vocab) sums. The same sums, so the same values
    in the same order; equal sums may come in another order (the kernel puts the lower index first)."""
    ops = kernels.loaded()
    on_cpu_float = all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (scores, log_probs))
    if ops is not None and on_cpu_float:
        return ops.top_of_sums(scores, log_probs)  # type: ignore[attr-defined]
    n, k = scores.shape
    return (scores.reshape(-1, 1) + log_probs).view(n, -1).topk(k, dim=1)


def should_prune(finished: int, rows: int) -> bool:
    """Whether to drop finished rows from a decoding batch now: copying the caches costs about one decoding step,
    so wait until an eighth of the rows (and at least one) has finished."""
    return finished > 0 and finished * 8 >= rows
