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
    from tformer.nn.layers import DecoderLayer
    from tformer.nn.stacks import Decoder

ENV = "TFORMER_NATIVE"  # "0" turns the native step off
SOURCE = Path(__file__).parent / "csrc" / "decoder_step.cpp"
NAME = "tformer_decoder_step"
ACTIVATION_CODES = {"relu": 0, "gelu": 1, "gelu_tanh": 2}  # as decoder_step.cpp's `activation`
TENSORS_PER_LAYER = 18  # layer_tensors; decoder_step.cpp kTensorsPerLayer
WEIGHT_POSITIONS = (0, 2, 6, 8, 12, 14)  # of those, the products' weights


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
        self.tensors = [t.detach() for layer in layers for t in layer_tensors(layer)]
        packed = [p for layer in layers for p in layer_packed(layer)]
        weights = [p for i, p in enumerate(packed) if i % TENSORS_PER_LAYER in WEIGHT_POSITIONS]
        # Empty where no copy is read (biases, norms); all-empty when the packed form is unavailable (the C++ step
        # then uses the plain product, as tformer.nn.linear does).
        self.packed = [] if None in weights else [torch.Tensor() if p is None else p for p in packed]


def _state(decoder: Decoder) -> _State | bool:
    """The run's ``_State``, or False when some layer is not one the C++ step knows."""
    from tformer.nn.layers import DecoderLayer

    layers = list(decoder.layers)
    if not layers or not all(isinstance(layer, DecoderLayer) for layer in layers):
        return False
    linears = [m for layer in layers for m in (layer.self_attn.in_proj, layer.self_attn.out_proj,
                                               layer.cross_attn.in_proj, layer.cross_attn.out_proj,
                                               layer.ffn.linear1, layer.ffn.linear2)]
    first = layers[0]
    same = all(
        layer.self_attn.num_heads == first.self_attn.num_heads
        and layer.ffn.activation == first.ffn.activation
        and all(n.norm.eps == first.self_attn_norm.norm.eps and n.norm_first == first.self_attn_norm.norm_first
                for n in (layer.self_attn_norm, layer.cross_attn_norm, layer.ffn_norm))
        for layer in layers
    )
    if not same or not all(type(m) is Linear and m.bias is not None for m in linears):
        return False
    if first.ffn.activation not in ACTIVATION_CODES:
        return False
    return _State(layers)


def layer_tensors(layer: DecoderLayer) -> list[Tensor]:
    """The 18 tensors of one decoder layer in decoder_step.cpp's order: per sub-layer its products' weights and
    biases, then its LayerNorm's weight and bias (cross-attention: the query rows of the fused projection only)."""
    d = layer.self_attn.d_model
    sa, ca, ffn = layer.self_attn, layer.cross_attn, layer.ffn
    return [
        sa.in_proj.weight, sa.in_proj.bias, sa.out_proj.weight, sa.out_proj.bias,
        layer.self_attn_norm.norm.weight, layer.self_attn_norm.norm.bias,
        ca.in_proj.weight[:d], ca.in_proj.bias[:d], ca.out_proj.weight, ca.out_proj.bias,
        layer.cross_attn_norm.norm.weight, layer.cross_attn_norm.norm.bias,
        ffn.linear1.weight, ffn.linear1.bias, ffn.linear2.weight, ffn.linear2.bias,
        layer.ffn_norm.norm.weight, layer.ffn_norm.norm.bias,
    ]  # fmt: skip


def layer_packed(layer: DecoderLayer) -> list[Tensor | None]:
    """oneDNN copies of the layer's weights at the positions of ``layer_tensors``' weights (None elsewhere)."""
    d = layer.self_attn.d_model
    sa, ca, ffn = layer.self_attn, layer.cross_attn, layer.ffn
    return [
        sa.in_proj.packed_weight(), None, sa.out_proj.packed_weight(), None, None, None,
        ca.in_proj.packed_weight(slice(0, d)), None, ca.out_proj.packed_weight(), None, None, None,
        ffn.linear1.packed_weight(), None, ffn.linear2.packed_weight(), None, None, None,
    ]  # fmt: skip
