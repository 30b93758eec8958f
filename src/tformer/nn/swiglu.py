"""The gated feed-forward network of Llama-style models (Shazeer, 2020, "GLU Variants Improve Transformer"):

SwiGLU(x) = (SiLU(x W_gate) ⊙ x W_up) W_down, with SiLU(z) = z · sigmoid(z).

The gate and up projections are one fused ``gate_up`` matrix (rows: gate, then up), as attention fuses Q, K, V:
one product per layer instead of two.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from tformer.nn.dropout import Dropout
from tformer.nn.linear import Linear


class SwiGLUFeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        self.d_ff = d_ff
        self.gate_up = Linear(d_model, 2 * d_ff, bias=bias)
        self.dropout = Dropout(dropout)
        self.down = Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, len, d_model) -> (batch, len, d_model)."""
        gate, up = self.gate_up(x).split(self.d_ff, dim=-1)  # each (batch, len, d_ff)
        hidden = F.silu(gate) * up
        return self.down(self.dropout(hidden) if self.training else hidden)
