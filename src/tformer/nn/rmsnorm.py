"""Root-mean-square layer normalisation (Zhang & Sennrich, 2019), the norm of Llama-style models.

RMSNorm(x) = x / sqrt(mean(x²) + eps) · g: LayerNorm without subtracting the mean and without a bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., d_model) -> (..., d_model). Computed in float32 (a half-precision square sum loses digits)."""
        normed = F.rms_norm(x.float(), (x.size(-1),), eps=self.eps)  # PyTorch's kernel for x / sqrt(mean(x²) + eps)
        return self.weight * normed.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"
