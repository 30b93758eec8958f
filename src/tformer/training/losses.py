"""Label-smoothed cross-entropy (Szegedy et al.; paper section 5.4), padding ignored.

One fused autograd function: the forward pass takes one log-softmax over the vocabulary, the backward pass writes
the gradient softmax - smoothed one-hot in place, without the intermediate (tokens, vocab) tensors autograd
would make for a gather, a mean and their sum. Values and gradients equal ``F.cross_entropy`` with
``label_smoothing`` (tested).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from tformer.training.data import Batch


def batch_loss(
    model: Callable[..., Tensor],
    batch: Batch,
    smoothing: float,
    pad_id: int,
    device: torch.device | None = None,
    bf16: bool = False,
) -> tuple[Tensor, Tensor]:
    """``label_smoothed_nll_loss`` of a translation batch, with logits computed only at its non-pad target positions
    (``Seq2SeqTransformer.forward``'s ``keep``); ``bf16`` runs the model under bfloat16 autocast."""
    device = batch.src.device if device is None else device
    target = batch.tgt_out.to(device)
    keep = target.ne(pad_id)  # (batch, tgt_len): positions with a token to predict
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(batch.src.to(device), batch.tgt_in.to(device), keep)  # (tokens, vocab)
    return label_smoothed_nll_loss(logits, target[keep], smoothing, pad_id)


def label_smoothed_nll_loss(logits: Tensor, target: Tensor, smoothing: float, pad_id: int) -> tuple[Tensor, Tensor]:
    """Summed label-smoothed loss and summed plain NLL over non-pad target tokens.

    Per token, loss = (1 - smoothing) * nll + smoothing * (mean over the vocabulary of -log p): the same values
    as ``F.cross_entropy(..., label_smoothing=smoothing, ignore_index=pad_id, reduction="sum")`` and its
    unsmoothed twin.

    Args:
        logits: (batch, tgt_len, vocab), or (tokens, vocab) with target (tokens,).
        target: (batch, tgt_len).
    Returns:
        (loss_sum, nll_sum), both scalars; divide by the number of non-pad tokens for a mean. ``nll_sum`` carries
        no gradient.
    """
    flat_logits = logits.reshape(-1, logits.size(-1)).float()  # (tokens, vocab)
    return _SmoothedCrossEntropy.apply(flat_logits, target.reshape(-1), smoothing, pad_id)


class _SmoothedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx, logits: Tensor, target: Tensor, smoothing: float, pad_id: int
    ) -> tuple[Tensor, Tensor]:
        log_probs = torch.log_softmax(logits, dim=-1)  # (tokens, vocab)
        real = target.ne(pad_id)  # (tokens,)
        safe_target = target.masked_fill(~real, 0).unsqueeze(1)  # (tokens, 1); any valid index for padding
        nll = -log_probs.gather(1, safe_target).squeeze(1).masked_fill(~real, 0.0)  # (tokens,)
        uniform = -log_probs.sum(dim=-1).masked_fill(~real, 0.0) / logits.size(-1)  # (tokens,)
        nll_sum = nll.sum()
        loss = (1.0 - smoothing) * nll_sum + smoothing * uniform.sum()
        ctx.save_for_backward(log_probs, safe_target, real)
        ctx.smoothing = smoothing
        ctx.mark_non_differentiable(nll_sum)
        return loss, nll_sum

    @staticmethod
    def backward(ctx: FunctionCtx, grad_loss: Tensor, _grad_nll: Tensor) -> tuple[Tensor, None, None, None]:
        log_probs, safe_target, real = ctx.saved_tensors
        smoothing, vocab = ctx.smoothing, log_probs.size(-1)
        grad = log_probs.exp().sub_(smoothing / vocab)  # softmax - smoothing/V  (tokens, vocab)
        grad.scatter_add_(1, safe_target, grad.new_full(safe_target.shape, -(1.0 - smoothing)))
        grad.mul_((real.to(grad.dtype) * grad_loss).unsqueeze(1))  # padding rows get no gradient
        return grad, None, None, None
