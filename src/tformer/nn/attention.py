"""Scaled dot-product attention (reference and fused, side by side) and multi-head attention.

Masks are boolean, ``True`` = may attend (see ``tformer.nn.masks``). A query row whose keys are all masked
gets all-zero weights and a zero output, never NaN.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tformer.nn import kernels
from tformer.nn.cache import AttentionCache
from tformer.nn.fast import fast_paths_enabled
from tformer.nn.linear import Linear
from tformer.nn.masks import causal_mask, combine_masks
from tformer.nn.outputs import AttentionOutput
from tformer.nn.rotary import apply_rotary


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """softmax(Q·Kᵀ/√d_k)·V.

    Args:
        q: (batch, heads, tgt_len, head_dim); k, v: (batch, heads, src_len, head_dim).
        mask: boolean, broadcastable to (batch, heads, tgt_len, src_len); True = may attend.
        need_weights: True runs the reference computation and returns the weights;
            False runs PyTorch's fused SDPA kernel and returns ``None`` for the weights.
    Returns:
        output (batch, heads, tgt_len, head_dim) and weights (batch, heads, tgt_len, src_len) or None.
    """
    if not need_weights and dropout_p == 0.0 and one_query_kernel_applies(q, k, v, mask):
        return kernels.loaded().decode_attention(q, k, v, mask), None  # type: ignore[union-attr]
    if not need_weights and (mask is None or fused_kernel_zeroes_masked_rows(q.device.type)):
        return fused_attention(q, k, v, mask, dropout_p), None
    has_key = None
    if mask is not None:
        has_key = mask.any(dim=-1, keepdim=True)  # (batch, heads|1, tgt_len|1, 1)
        mask = mask | ~has_key  # a fully masked row attends uniformly, then is zeroed below: no NaN
    if need_weights:
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (batch, heads, tgt_len, src_len)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        if has_key is not None:
            weights = weights * has_key
        dropped = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
        return dropped @ v, weights
    output = fused_attention(q, k, v, mask, dropout_p)
    if has_key is not None:
        output = output * has_key
    return output, None


FLOAT32_HEAD_DIM = 32  # at most this head_dim, the CPU kernel runs in float32 under bfloat16 autocast


def fused_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    """PyTorch's fused SDPA kernel, in float32 where that is the faster choice on the CPU.

    Under bfloat16 autocast the kernel would take bfloat16 inputs; on the CPU (PyTorch 2.13) its bfloat16 version
    is the slower one for small heads. Measured on 2 cores, forward + backward, causal mask
    (``python -m benchmarks.probes attention-dtype``), (batch, heads, len, head_dim): (32, 8, 256, 32) bfloat16 65
    ms, float32 51 ms; (128, 8, 32, 32) 37 against 5 ms; (16, 8, 512, 32) even, 83 against 82 ms; but
    (32, 4, 256, 64) 35 against 38 ms and (16, 9, 512, 64) 114 against 156 ms. So heads of at most
    ``FLOAT32_HEAD_DIM`` features are attended in float32 (the output is cast back to the autocast dtype), larger ones
    as autocast says. Outside CPU autocast nothing changes.
    """
    if (torch.is_autocast_enabled("cpu") and q.device.type == "cpu" and q.size(-1) <= FLOAT32_HEAD_DIM
            and torch.get_autocast_dtype("cpu") == torch.bfloat16):  # decoding (no autocast) stops at the first test
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=dropout_p)
        return out.to(torch.bfloat16)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


ONE_QUERY_PAIRS = 32  # decode_attention.h's kMostPairs


def one_query_kernel_applies(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> bool:
    """Whether the native extension's one-query attention (``csrc/decode_attention.h``, as the C++ decoding step
    takes it) computes this call: one query position (a decoding step) of at most ``ONE_QUERY_PAIRS`` (sentence,
    head) pairs, float32 on the CPU, inference (no gradients), the fast paths on and the extension loaded
    (``tformer.nn.kernels``). Larger batches go faster through PyTorch's fused kernel (measured)."""
    if q.size(-2) != 1 or torch.is_grad_enabled() or kernels.loaded() is None or not fast_paths_enabled():
        return False
    if q.dim() != 4 or q.size(0) * q.size(1) > ONE_QUERY_PAIRS:
        return False
    tensors = (q, k, v) if mask is None else (q, k, v, mask)
    return (all(t.device.type == "cpu" for t in tensors) and q.dtype == k.dtype == v.dtype == torch.float32
            and (mask is None or (mask.dtype == torch.bool and mask.dim() == 4)) and q.dim() == k.dim() == v.dim() == 4
            and k.shape[:2] == q.shape[:2])


@functools.cache
def fused_kernel_zeroes_masked_rows(device_type: str) -> bool:
    """Whether PyTorch's fused kernel on this device already returns zeros (not NaN) for a query whose keys are
    all masked. Recent CPU kernels do; then the per-call fix-up above, which costs four extra operations in every
    attention call of every decoding step, is skipped."""
    q, kv = torch.ones(1, 1, 1, 8, device=device_type), torch.ones(1, 1, 2, 8, device=device_type)
    mask = torch.zeros(1, 1, 1, 2, dtype=torch.bool, device=device_type)  # (batch, heads, tgt_len, src_len)
    out = F.scaled_dot_product_attention(q, kv, kv, attn_mask=mask)
    return bool((out == 0).all())


class MultiHeadAttention(nn.Module):
    """Project to queries, keys and values, split into heads, attend, concatenate, project out.

    Self-attention when ``memory`` is None, cross-attention (encoder-decoder) otherwise. The Q, K and V
    projections are one fused ``in_proj`` matrix (rows: query, key, value), like ``torch.nn.MultiheadAttention``.

    Grouped-query attention (Ainslie et al., 2023): with ``num_kv_heads`` < ``num_heads``, each group of
    num_heads / num_kv_heads query heads shares one key/value head, so the cache holds num_kv_heads heads.
    """

    def __init__(
        self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True, num_kv_heads: int | None = None
    ) -> None:
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        if num_kv_heads <= 0 or num_heads % num_kv_heads != 0:
            raise ValueError(f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})")
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = d_model // num_heads
        self.kv_dim = num_kv_heads * self.head_dim  # width of the keys (and of the values)
        self.dropout = dropout
        self.in_proj = Linear(d_model, d_model + 2 * self.kv_dim, bias=bias)
        self.out_proj = Linear(d_model, d_model, bias=bias)
        nn.init.xavier_uniform_(self.in_proj.weight)
        if bias:
            nn.init.zeros_(self.in_proj.bias)
            nn.init.zeros_(self.out_proj.bias)

    def forward(
        self,
        query: Tensor,
        memory: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        causal: bool = False,
        cache: AttentionCache | None = None,
        need_weights: bool = False,
        rotary: tuple[Tensor, Tensor] | None = None,
    ) -> AttentionOutput:
        """
        Args:
            query: (batch, tgt_len, d_model).
            memory: (batch, src_len, d_model) for cross-attention; None for self-attention. May be None with a
                static cache that already holds the memory's keys/values.
            key_padding_mask: (batch, src_len), True = real key.
            attn_mask: (tgt_len, src_len) or (batch, tgt_len, src_len), True = may attend.
            causal: each query attends only to keys at its own position or earlier (offset by cached length).
            cache: keys/values from earlier steps; updated in place.
            need_weights: also return per-head weights (batch, heads, tgt_len, src_len).
            rotary: cosines and sines (batch, 1, tgt_len, head_dim) of the query positions' rotary angles
                (``tformer.nn.rotary``); self-attention queries and new keys are rotated before caching.
        Returns:
            AttentionOutput with output (batch, tgt_len, d_model).
        """
        batch, tgt_len, _ = query.shape
        q, k, v = self._project(query, memory, cache, rotary)  # (batch, heads | kv heads, len, head_dim)
        if causal and tgt_len > 1:
            step_mask = causal_mask(tgt_len, k.size(2), device=query.device)
            attn_mask = step_mask if attn_mask is None else attn_mask & step_mask
        mask = combine_masks(key_padding_mask, attn_mask)
        dropout_p = self.dropout if self.training else 0.0
        if self.num_kv_heads != self.num_heads:
            out, weights = grouped_query_attention(q, k, v, mask, dropout_p, need_weights)
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p, need_weights)
        out = out.transpose(1, 2).reshape(batch, tgt_len, self.d_model)  # (batch, tgt_len, d_model)
        return AttentionOutput(self.out_proj(out), weights)

    def _project(
        self, query: Tensor, memory: Tensor | None, cache: AttentionCache | None, rotary: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        d = self.d_model
        if memory is None and (cache is None or not cache.static):
            heads = (self.num_heads, self.num_kv_heads, self.num_kv_heads)
            q, k, v = self._split_heads(self.in_proj(query)).split(heads, dim=1)
            if rotary is not None:
                q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        else:
            q = self._split_heads(self._in_proj_rows(query, slice(0, d)))
            if cache is not None and cache.ready:
                return q, cache.keys, cache.values
            if memory is None:
                raise ValueError("cross-attention needs `memory` (or a filled cache)")
            k, v = self.memory_keys_values(memory)
        if cache is not None:
            k, v = cache.update(k, v)
        return q, k, v

    def memory_keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention's keys and values of ``memory`` (batch, src_len, d_model): two (batch, kv heads, src_len,
        head_dim) tensors, as a static cache holds them."""
        rows = slice(self.d_model, self.d_model + 2 * self.kv_dim)
        k, v = self._split_heads(self._in_proj_rows(memory, rows)).chunk(2, dim=1)
        return k, v

    def _in_proj_rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times some rows of the fused projection: the queries' (``:d``) or the keys' and values' (``d:``)."""
        # tformer.nn.linear.Linear, or the int8 copy (tformer.nn.quantized), which packs these row blocks apart.
        return self.in_proj.rows(x, rows)

    def _split_heads(self, x: Tensor) -> Tensor:
        """(batch, len, n * d_model) -> (batch, n * heads, len, head_dim), n = number of fused projections."""
        batch, length, width = x.shape
        return x.view(batch, length, width // self.head_dim, self.head_dim).transpose(1, 2)



def grouped_query_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float = 0.0, need_weights: bool = True
) -> tuple[Tensor, Tensor | None]:
    """``scaled_dot_product_attention`` where each key/value head serves a group of query heads (query head h reads
    key/value head h // group), without copying keys and values: a group's query heads are attended as extra
    query rows of their key/value head.

    Args:
        q: (batch, heads, tgt_len, head_dim); k, v: (batch, kv_heads, src_len, head_dim).
        mask: boolean, broadcastable to (batch, heads, tgt_len, src_len); True = may attend.
    Returns:
        output (batch, heads, tgt_len, head_dim) and weights (batch, heads, tgt_len, src_len) or None.
    """
    batch, heads, tgt_len, head_dim = q.shape
    kv_heads = k.size(1)
    q = q.reshape(batch, kv_heads, heads // kv_heads * tgt_len, head_dim)  # (batch, kv_heads, group * tgt_len, ...)
    if mask is not None and (mask.size(1) != 1 or mask.size(2) != 1):  # a per-query mask follows its query rows
        mask = mask.expand(mask.size(0), heads, tgt_len, mask.size(-1)).reshape(mask.size(0), kv_heads, -1,
                                                                                 mask.size(-1))
    out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p, need_weights)
    out = out.reshape(batch, heads, tgt_len, head_dim)  # a view unless the kernel returned another layout
    return out, None if weights is None else weights.reshape(batch, heads, tgt_len, -1)
