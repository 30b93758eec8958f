"""Label-smoothed cross-entropy (Szegedy et al.; paper section 5.4), padding ignored."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def label_smoothed_nll_loss(logits: Tensor, target: Tensor, smoothing: float, pad_id: int) -> tuple[Tensor, Tensor]:
    """Summed label-smoothed loss and summed plain NLL over non-pad target tokens.

    Args:
        logits: (batch, tgt_len, vocab); target: (batch, tgt_len).
    Returns:
        (loss_sum, nll_sum), both scalars; divide by the number of non-pad tokens for a mean.
    """
    flat_logits = logits.reshape(-1, logits.size(-1)).float()
    flat_target = target.reshape(-1)
    loss = F.cross_entropy(flat_logits, flat_target, ignore_index=pad_id, label_smoothing=smoothing, reduction="sum")
    nll = F.cross_entropy(flat_logits.detach(), flat_target, ignore_index=pad_id, reduction="sum")
    return loss, nll
