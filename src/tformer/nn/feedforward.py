"""Position-wise feed-forward network: FFN(x) = act(x W1 + b1) W2 + b2 (paper, section 3.3)."""

from __future__ import annotations

from torch import Tensor, nn

from tformer.nn.dropout import Dropout
from tformer.nn.linear import FUSED_ACTIVATIONS, Linear

# "gelu" is the exact (erf) GELU; "gelu_tanh" its tanh approximation, which some BERT checkpoints were trained with.
ACTIVATIONS = tuple(FUSED_ACTIVATIONS)


class FeedForward(nn.Module):
    def __init__(
        self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu", bias: bool = True
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.linear1 = Linear(d_model, d_ff, bias=bias)
        self.activation = activation  # applied by linear1, in the same pass as its product where it can be
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, len, d_model) -> (batch, len, d_model)."""
        hidden = self.linear1(x, activation=self.activation)  # (batch, len, d_ff)
        return self.linear2(self.dropout(hidden))

    def extra_repr(self) -> str:
        return f"activation={self.activation}"
