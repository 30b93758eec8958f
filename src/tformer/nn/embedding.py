"""Token embedding scaled by sqrt(d_model), as in the paper (section 3.4)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TokenEmbedding(nn.Module):
    """Maps token ids (batch, len) to vectors (batch, len, d_model), multiplied by sqrt(d_model).

    Ids outside ``[0, vocab_size)`` raise a ``ValueError`` naming the bad id, instead of an index error deep in
    torch. ``weight`` can be shared with another embedding and the output projection (weight tying).
    """

    def __init__(self, vocab_size: int, d_model: int, pad_id: int | None = None, scale: bool = True) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) * d_model**-0.5)
        self.pad_id = pad_id
        if pad_id is not None:
            with torch.no_grad():
                self.weight[pad_id].zero_()
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, tokens: Tensor) -> Tensor:
        check_token_ids(tokens, self.vocab_size)
        return nn.functional.embedding(tokens, self.weight) * self.scale


def check_token_ids(tokens: Tensor, vocab_size: int) -> None:
    if tokens.numel() == 0:
        return
    low, high = (int(x) for x in torch.aminmax(tokens))  # one pass over the ids instead of two
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(f"token id {bad} is outside the vocabulary [0, {vocab_size})")
