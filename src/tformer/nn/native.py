"""The decoder stack's cached one-position step in C++, for CPU inference (``csrc/decoder_step.cpp``).

A decoding step at batch 1 makes hundreds of PyTorch operator calls on small tensors; from Python, the time
between them is about as long as the arithmetic. The C++ step makes the same calls to the same kernels in the same
order, so its results are identical to the Python modules' (tested), without the interpreter in between.

It is built with PyTorch's extension builder the first time it is needed (a C++ compiler is required; about 30 s,
once; the build is kept in PyTorch's extensions folder, ``TORCH_EXTENSIONS_DIR``). ``make install`` builds it ahead.
Without a compiler, or with ``TFORMER_NATIVE=0``, decoding runs in Python with the same results. ``Decoder`` uses it
for a step when :func:`applies` says so: inference (no gradients) on CPU in float32, one new position per sentence
with a filled cache, no attention weights requested, and plain ``tformer.nn`` layers (not the int8 copy).
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tformer.nn.attention import fused_kernel_zeroes_masked_rows
from tformer.nn.cache import KVCache
from tformer.nn.linear import WIDE_OUTPUT, Linear

if TYPE_CHECKING:
    from tformer.nn.layers import AddNorm, DecoderLayer
    from tformer.nn.stacks import Decoder

ENV = "TFORMER_NATIVE"  # "0" turns the native step off
SOURCE = Path(__file__).parent / "csrc" / "decoder_step.cpp"
NAME = "tformer_decoder_step"
ACTIVATION_CODES = {"relu": 0, "gelu": 1, "gelu_tanh": 2}  # as decoder_step.cpp's `activation`


@functools.cache
def native_ops() -> object | None:
    """The compiled extension, built on first call; None when it is turned off or cannot be built (warned once)."""
    if os.environ.get(ENV, "1") == "0":
        return None
    try:
        from torch.utils import cpp_extension

        if not _already_built(cpp_extension):
            print("tformer: building the native decoding step (once, about 30 s) ...", file=sys.stderr, flush=True)
        return cpp_extension.load(name=NAME, sources=[str(SOURCE)], extra_cflags=["-O3"], verbose=False)
    except Exception as error:  # no compiler, no headers, a failed build: decode in Python instead
        warnings.warn(
            f"tformer: the native decoding step could not be built ({type(error).__name__}: {error}); decoding runs "
            f"in Python (same results, slower at small batches). Set {ENV}=0 to skip the attempt.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _already_built(cpp_extension: object) -> bool:
    try:
        folder = Path(cpp_extension._get_build_directory(NAME, verbose=False))  # type: ignore[attr-defined]
        return any(folder.glob(f"{NAME}*.so"))
    except Exception:
        return False


def applies(decoder: Decoder, x: Tensor, cache: KVCache | None, memory_mask: Tensor | None, need_weights: bool) -> bool:
    """Whether the native step can compute this ``Decoder`` call exactly as the Python modules would."""
    if cache is None or need_weights or x.size(1) != 1 or decoder.training or torch.is_grad_enabled():
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or cache.length == 0 or not cache.cross_attn[0].ready:
        return False
    if memory_mask is not None and not fused_kernel_zeroes_masked_rows("cpu"):
        return False
    if native_ops() is None:
        return False
    if cache.native_state is None:
        cache.native_state = _state(decoder)
    return cache.native_state is not False


def decoder_step(decoder: Decoder, x: Tensor, memory_mask: Tensor | None, cache: KVCache) -> Tensor:
    """x (batch, 1, d_model) -> (batch, 1, d_model): every decoder layer for one new position, before the stack's
    final norm. ``memory_mask``: (batch, src_len), True = real source token, or None. Updates ``cache``."""
    ops = native_ops()
    state = cache.native_state
    assert ops is not None and isinstance(state, _State), "call applies() first"
    buffers = [c.reserve(1) for c in cache.self_attn]
    mask = None if memory_mask is None else memory_mask[:, None, None, :]  # (batch, 1, 1, src_len)
    out = ops.decoder_step(  # type: ignore[attr-defined]
        x[:, 0], state.tensors, state.packed, [k for k, _ in buffers], [v for _, v in buffers], cache.length,
        [c.keys for c in cache.cross_attn], [c.values for c in cache.cross_attn], mask,
        state.heads, state.eps, state.norm_first, state.activation, WIDE_OUTPUT,
    )
    for c in cache.self_attn:
        c.advance(1)
    return out[:, None]


class _State:
    """The tensors the C++ step reads, gathered once per decoding run (one ``KVCache``)."""

    def __init__(self, layers: list[DecoderLayer]) -> None:
        first = layers[0]
        self.heads = first.self_attn.num_heads
        self.eps = first.self_attn_norm.norm.eps
        self.norm_first = first.self_attn_norm.norm_first
        self.activation = ACTIVATION_CODES[first.ffn.activation]
        # decoder_step.cpp's order: per sub-layer, weight and bias of each product, then the norm's weight and bias.
        self.tensors: list[Tensor] = []
        packed: list[Tensor | None] = []  # oneDNN copies at the weights' places, None elsewhere
        copies: list[Tensor | None] = []
        for layer in layers:
            for products, add_norm in sublayers(layer):
                for linear, rows in products:
                    weight, bias, _ = linear.block(rows)
                    copies.append(linear.packed_weight(rows))
                    self.tensors += [weight.detach(), bias.detach()]
                    packed += [copies[-1], None]
                self.tensors += [add_norm.norm.weight.detach(), add_norm.norm.bias.detach()]
                packed += [None, None]
        # Without a copy for every product none is passed, and the C++ step multiplies several rows by the plain
        # product, as tformer.nn.linear does without one.
        missing = any(copy is None for copy in copies)
        self.packed = [] if missing else [torch.Tensor() if t is None else t for t in packed]


def _state(decoder: Decoder) -> _State | bool:
    """The run's ``_State``, or False when some layer is not one the C++ step knows."""
    from tformer.nn.layers import DecoderLayer

    layers = list(decoder.layers)
    if not layers or not all(isinstance(layer, DecoderLayer) for layer in layers):
        return False
    first = layers[0]
    parts = [part for layer in layers for part in sublayers(layer)]
    known = all(type(linear) is Linear and linear.bias is not None for products, _ in parts for linear, _ in products)
    same_norms = all(n.norm.eps == first.self_attn_norm.norm.eps and n.norm_first == first.self_attn_norm.norm_first
                     for _, n in parts)
    same_layers = all(
        attention.num_heads == first.self_attn.num_heads and layer.ffn.activation == first.ffn.activation
        for layer in layers for attention in (layer.self_attn, layer.cross_attn)
    )
    if not (known and same_norms and same_layers and first.ffn.activation in ACTIVATION_CODES):
        return False
    return _State(layers)


def sublayers(layer: DecoderLayer) -> list[tuple[list[tuple[Linear, slice | None]], AddNorm]]:
    """The layer's three sub-layers in decoder_step.cpp's order, each as its two products (a linear layer and the
    output rows used: cross-attention multiplies by the query rows of its fused projection only) and its
    Add & Norm."""
    d = layer.self_attn.d_model
    return [
        ([(layer.self_attn.in_proj, None), (layer.self_attn.out_proj, None)], layer.self_attn_norm),
        ([(layer.cross_attn.in_proj, slice(0, d)), (layer.cross_attn.out_proj, None)], layer.cross_attn_norm),
        ([(layer.ffn.linear1, None), (layer.ffn.linear2, None)], layer.ffn_norm),
    ]
