"""Dropout whose CPU mask costs half of PyTorch's.

Same distribution as ``torch.nn.Dropout``: in training mode each element is zeroed with probability ``p`` and the
rest are scaled by 1 / (1 - p); in eval mode the input is returned unchanged. On CPU, ``F.dropout`` draws its mask
with ``bernoulli_``, which on this project's benchmark machine took 4.5 ms for a (3000, 256) batch, against 2.2 ms
for uniform numbers from ``rand_like`` and a comparison; dropout runs 19 times in each training step of the
bundled translation model. Elsewhere (CUDA) PyTorch's fused kernel is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Zero each element of ``x`` with probability ``p`` and scale the rest by 1 / (1 - p) when ``training``."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training=True)
    # Uniform numbers from PyTorch's global generator, so torch.manual_seed makes runs reproducible.
    scale = torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))  # (same shape as x): 0 or 1/(1-p)
    return x * scale


class Dropout(nn.Dropout):
    """``torch.nn.Dropout`` with the faster CPU mask of :func:`dropout`; a drop-in replacement (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)
