"""Rotary position embeddings (RoFormer, Su et al. 2021): positions enter attention by rotating queries and keys.

Each pair of features (i, i + head_dim/2) of a query or key at position ``m`` is rotated by the angle
m · θ_i, θ_i = base^(-2i / head_dim). The dot product of a query at m and a key at n then depends on m - n only,
so attention sees relative positions, and nothing is added to the token embeddings. The pairing of feature i with
i + head_dim/2 ("rotate half") is the one Hugging Face's Llama uses; llama.cpp pairs neighbours (2i, 2i + 1),
and ``tformer.interop.gguf`` reorders its query/key weights into this pairing on load.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def rotary_frequencies(head_dim: int, base: float = 10000.0) -> Tensor:
    """θ_i = base^(-2i / head_dim) for i = 0 .. head_dim/2 - 1, float32 (head_dim / 2,)."""
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"rotary embeddings need a positive, even head_dim, got {head_dim}")
    return 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim)


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last axis: a quarter turn of each feature pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each feature pair of ``x`` (batch, heads, len, head_dim) by the angles whose cosines and sines are
    ``cos``, ``sin`` (batch, 1, len, head_dim)."""
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """The cosines and sines of the rotation angles of given positions, shared by every attention layer.

    The model computes them once per forward pass from the position ids (which, with left padding, differ between
    rows) and hands them to each ``MultiHeadAttention``, which rotates its queries and new keys before caching.
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.base = base
        # A plain attribute, not a buffer: ``model.to(torch.bfloat16)`` must not round the frequencies (angles at
        # position 1000 would be off by whole turns); the angles are computed in float32, then cast to ``dtype``.
        self.inv_freq = rotary_frequencies(head_dim, base)

    def forward(self, positions: Tensor, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """positions: (batch, len) integer position ids -> cos, sin: (batch, 1, len, head_dim)."""
        inv_freq = self.inv_freq.to(positions.device)
        angles = positions[:, :, None].float() * inv_freq  # (batch, len, head_dim / 2)
        angles = torch.cat((angles, angles), dim=-1)[:, None]  # (batch, 1, len, head_dim)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}"
