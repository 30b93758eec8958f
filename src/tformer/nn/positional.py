"""Positional encodings: the paper's fixed sinusoids, or learned positions."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tformer.nn.dropout import Dropout


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> Tensor:
    """The table PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(same angle).

    Returns a float32 tensor (max_len, d_model). Odd ``d_model`` is allowed: the last column is a sine.
    """
    if max_len <= 0 or d_model <= 0:
        raise ValueError(f"max_len and d_model must be positive, got max_len={max_len}, d_model={d_model}")
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d_model/2),)
    angle = position / torch.pow(10000.0, two_i / d_model)  # (max_len, ceil(d_model/2))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table.float()


class PositionalEncoding(nn.Module):
    """Adds position information to embeddings (batch, len, d_model), then applies dropout.

    ``learned=False`` uses the fixed sinusoid table as a registered buffer; ``learned=True`` learns one vector
    per position. ``offset`` shifts positions, for incremental decoding.
    """

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.0, learned: bool = False) -> None:
        super().__init__()
        self.max_len = max_len
        self.learned = learned
        if learned:
            self.table = nn.Parameter(torch.randn(max_len, d_model) * d_model**-0.5)
        else:
            self.register_buffer("table", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x: (batch, len, d_model) -> (batch, len, d_model)."""
        length = x.size(1)
        if offset + length > self.max_len:
            raise ValueError(
                f"sequence of length {offset + length} is longer than the positional table (max_len={self.max_len})"
            )
        x = x + self.table[offset : offset + length].to(x.dtype)
        return self.dropout(x)


