"""Attention masks. One convention for the whole package: boolean, ``True`` = may attend.

This is the polarity PyTorch's fused ``scaled_dot_product_attention`` takes. Where a torch API uses the opposite
(``nn.MultiheadAttention``'s ``key_padding_mask``), convert once at that call.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(tokens: Tensor, pad_id: int) -> Tensor:
    """``True`` where a token is real. (batch, len) -> (batch, len)."""
    return tokens.ne(pad_id)


def without_trivial_mask(mask: Tensor | None) -> Tensor | None:
    """``None`` when ``mask`` lets every query see every key (no padding): the fused attention kernels run faster
    with no mask than with an all-True one. One check per stack call, instead of mask work in every layer."""
    if mask is not None and bool(mask.all()):
        return None
    return mask


def causal_mask(tgt_len: int, src_len: int | None = None, device: torch.device | None = None) -> Tensor:
    """Lower-triangular mask (tgt_len, src_len): query i may attend to keys 0..i + (src_len - tgt_len).

    The offset lets a block of new queries attend to a cached prefix of keys.
    """
    src_len = tgt_len if src_len is None else src_len
    offset = src_len - tgt_len
    return torch.ones(tgt_len, src_len, dtype=torch.bool, device=device).tril(diagonal=offset)


def combine_masks(
    key_padding_mask: Tensor | None,
    attn_mask: Tensor | None,
) -> Tensor | None:
    """Broadcast a key-padding mask (batch, src_len) and an attention mask (tgt_len, src_len) or
    (batch, [heads,] tgt_len, src_len) into one mask of shape (batch, 1 or heads, tgt_len or 1, src_len)."""
    mask = None
    if key_padding_mask is not None:
        mask = key_padding_mask[:, None, None, :]  # (batch, 1, 1, src_len)
    if attn_mask is not None:
        if attn_mask.dim() == 2:
            attn_mask = attn_mask[None, None]  # (1, 1, tgt_len, src_len)
        elif attn_mask.dim() == 3:
            attn_mask = attn_mask[:, None]  # (batch, 1, tgt_len, src_len)
        mask = attn_mask if mask is None else mask & attn_mask
    return mask
