"""The decoder stack's cached one-position step in C++, for CPU inference (``csrc/decoder_step.cpp``).

A decoding step at batch 1 makes hundreds of PyTorch operator calls on small tensors; from Python, the time
between them is about as long as the arithmetic. The C++ step makes the same calls to the same kernels in the same
order, so its results are identical to the Python modules' (tested), without the interpreter in between. It takes
layers in float32, in bfloat16 (every product plain, as ``tformer.nn.linear`` runs them), and the int8 copy's
(``tformer.nn.quantized.Int8Linear``: the same fbgemm op, ``quantized::linear_dynamic``, on the same packed weights).

This file and ``csrc/decoder_step.cpp`` mirror each other: the tensors gathered here are passed in the order of
:data:`LAYER_TENSORS`, which the C++ side names in its ``LayerTensor`` offsets (a test checks that the two lists
agree), and the C++ step repeats the Python modules' computation and ``tformer.nn.linear``'s choice of product form.
A change to either side, or to the modules it repeats, goes to the other too.

The extension also holds kernels that the Python modules take too once it is loaded (this module registers it in
``tformer.nn.kernels``): the row kernel of few-row products (``csrc/row_product.h``), one-query attention
(``csrc/decode_attention.h``) and beam search's choice of continuations, so the step and the modules compute
alike. On CPUs with AVX2 and FMA it is compiled for them (a separate build, ``NAME``).

It is built with PyTorch's extension builder (a C++ compiler is required; about 30 s, once; the build is kept in
PyTorch's extensions folder, ``TORCH_EXTENSIONS_DIR``). ``make install`` builds it ahead. Otherwise the first
decoding starts the build in a background process and says so once; decoding runs in Python until the build is
there (same results), so a first ``tformer translate`` takes seconds, not half a minute. ``native_ops()`` itself
builds in the foreground (the tests and ``make install`` call it).
Without a compiler, or with ``TFORMER_NATIVE=0``, decoding runs in Python with the same results; with every fast
path turned off (``TFORMER_FAST=0`` or ``tformer.nn.fast_paths(False)``) it runs in Python with plain products. The
stack (``tformer.nn.stacks.Decoder``) owns the dispatch: it takes this step when :func:`applies` finds no reason
not to. This module imports nothing from the stack; what it needs (the layers, the cache) comes as arguments, and
what it keeps for a decoding run lives here, keyed by that run's cache, not on the cache.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from tformer.nn import kernels
from tformer.nn.attention import fused_kernel_zeroes_masked_rows
from tformer.nn.cache import KVCache
from tformer.nn.fast import fast_paths_enabled
from tformer.nn.layers import AddNorm, DecoderLayer, EncoderLayer
from tformer.nn.linear import WIDE_OUTPUT, Linear
from tformer.nn.quantized import Int8Linear

ENV = "TFORMER_NATIVE"  # "0" turns the native step off
SOURCE = Path(__file__).parent / "csrc" / "decoder_step.cpp"
# AVX2 and FMA where PyTorch's own kernels found them (its "AVX2" and "AVX512" levels): the row kernel's vector
# loop. A build per instruction set, so a shared extensions folder never hands one CPU another's build.
VECTOR_FLAGS = ["-mavx2", "-mfma"] if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else []
NAME = "tformer_decoder_step" + ("_avx2" if VECTOR_FLAGS else "")
ACTIVATION_CODES = {"relu": 0, "gelu": 1, "gelu_tanh": 2}  # as decoder_step.cpp's `activate`
STEP_DTYPES = (torch.float32, torch.bfloat16)  # bfloat16: every product plain, as tformer.nn.linear does

# One decoder layer's tensors, in the order they are passed; decoder_step.cpp's `LayerTensor` names the same
# offsets (kSelfQkvWeight, ...). Per sub-layer (see `sublayers`): its two products' weight and bias, then its Add &
# Norm's weight and bias.
LAYER_TENSORS = (
    "self_qkv_weight", "self_qkv_bias", "self_out_weight", "self_out_bias", "self_norm_weight", "self_norm_bias",
    "cross_query_weight", "cross_query_bias", "cross_out_weight", "cross_out_bias", "cross_norm_weight",
    "cross_norm_bias",
    "ffn_in_weight", "ffn_in_bias", "ffn_out_weight", "ffn_out_bias", "ffn_norm_weight", "ffn_norm_bias",
)

# One encoder layer's tensors (decoder_step.cpp's `EncoderTensor`): self-attention, then feed-forward, as above.
ENCODER_LAYER_TENSORS = (
    "self_qkv_weight", "self_qkv_bias", "self_out_weight", "self_out_bias", "self_norm_weight", "self_norm_bias",
    "ffn_in_weight", "ffn_in_bias", "ffn_out_weight", "ffn_out_bias", "ffn_norm_weight", "ffn_norm_bias",
)


@functools.cache
def native_ops() -> object | None:
    """The compiled extension, built on first call; None when it is turned off or cannot be built (warned once)."""
    if os.environ.get(ENV, "1") == "0":
        return None
    try:
        from torch.utils import cpp_extension

        if not _already_built(cpp_extension):
            print("tformer: building the native decoding step (once, about 30 s) ...", file=sys.stderr, flush=True)
        ops = cpp_extension.load(name=NAME, sources=[str(SOURCE)], extra_cflags=["-O3", *VECTOR_FLAGS],
                                 verbose=False)
    except Exception as error:  # no compiler, no headers, a failed build: decode in Python instead
        warnings.warn(
            f"tformer: the native decoding step could not be built ({type(error).__name__}: {error}); decoding runs "
            f"in Python (same results, slower at small batches). Set {ENV}=0 to skip the attempt.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    kernels.use(ops)  # from now on the Python modules call the kernels the step calls
    return ops


_background: dict[str, float] = {}  # "started": when this process started a background build; "checked": last look


def available_ops() -> object | None:
    """The extension when it is built (loaded once); else None, after starting a background build the first time
    (said once on stderr) and looking again at most every 10 s, so a long-running server picks it up."""
    if os.environ.get(ENV, "1") == "0":
        return None
    if native_ops.cache_info().currsize:  # loaded (or failed) in this process already
        return native_ops()
    now = time.monotonic()
    if now - _background.get("checked", -1e9) < 10:
        return None
    _background["checked"] = now
    from torch.utils import cpp_extension

    if _already_built(cpp_extension) and not _build_running():
        return native_ops()
    if "started" not in _background:
        _background["started"] = now
        print("tformer: preparing the native decoding step in the background (once, about 30 s); until it is "
              "ready, decoding runs in Python with the same results", file=sys.stderr, flush=True)
        subprocess.Popen([sys.executable, "-c", "from tformer.nn.native import native_ops; native_ops()"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    return None


def _build_running() -> bool:
    """Whether PyTorch's builder holds its lock file in the build folder (a build in progress somewhere)."""
    try:
        from torch.utils import cpp_extension

        folder = Path(cpp_extension._get_build_directory(NAME, verbose=False))  # type: ignore[attr-defined]
        return (folder / "lock").exists()
    except Exception:
        return False


def _already_built(cpp_extension: object) -> bool:
    try:
        folder = Path(cpp_extension._get_build_directory(NAME, verbose=False))  # type: ignore[attr-defined]
        return any(folder.glob(f"{NAME}*.so"))
    except Exception:
        return False


def applies(
    layers: Sequence[nn.Module], x: Tensor, cache: KVCache | None, memory_mask: Tensor | None, need_weights: bool
) -> str:
    """Why the native step cannot compute this decoder-stack call exactly as the Python modules would: a reason,
    or "" when it can (the convention of PyTorch's ``why_not_sparsity_fast_path``).

    Args: the stack's ``layers``, and its call's ``x`` (batch, new positions, d_model), ``cache``, ``memory_mask``
    and ``need_weights``.
    """
    if not fast_paths_enabled():
        return "fast paths disabled"
    if cache is None:
        return "no cache"
    if x.size(1) != 1:
        return f"{x.size(1)} new positions (the step takes one)"
    state = _step_state(layers, x, memory_mask, need_weights, lambda: _run_state(layers, cache))
    if isinstance(state, str):
        return state
    if not cache.cross_attn or not cache.cross_attn[0].ready:
        return EMPTY_CACHE
    return ""


def layers_state(layers: Sequence[nn.Module], x: Tensor, memory_mask: Tensor | None = None) -> _State | str:
    """``applies`` for code that keeps its own caches (the C++ search loops, ``tformer.decoding.native_search``):
    the layers' gathered tensors when the step can take ``layers`` and inputs like ``x`` (rows, 1, d_model), else
    the reason it cannot."""
    if not fast_paths_enabled():
        return "fast paths disabled"
    return _step_state(layers, x, memory_mask, False, lambda: _kept_state(layers))


def _step_state(layers: Sequence[nn.Module], x: Tensor, memory_mask: Tensor | None, need_weights: bool,
                state_of: Callable[[], _State | str]) -> _State | str:
    """The checks ``applies``, ``layers_state`` and ``encoder_state`` share (``x``: any number of positions): the
    ``_State`` from ``state_of`` when they pass, else the first reason against."""
    if need_weights:
        return "attention weights requested"
    if any(layer.training for layer in layers):
        return "training is enabled"
    if torch.is_grad_enabled():
        return "gradients are enabled"
    if x.device.type != "cpu" or x.dtype not in STEP_DTYPES:
        return f"input is {x.dtype} on {x.device.type} (the step takes float32 or bfloat16 on CPU)"
    if memory_mask is not None and not fused_kernel_zeroes_masked_rows("cpu"):
        return "this PyTorch's CPU attention kernel does not zero fully masked rows"
    if available_ops() is None:
        if os.environ.get(ENV, "1") == "0":
            return f"turned off ({ENV}=0)"
        return "being built in the background" if "started" in _background else "the C++ step could not be built"
    state = state_of()
    if isinstance(state, str):
        return state
    if state.dtype != x.dtype:
        return f"input is {x.dtype}, the layers' weights are {state.dtype}"
    return state


EMPTY_CACHE = "empty cache (fill_caches fills it first)"  # the one reason the stack acts on: see fill_caches


def fill_caches(layers: Sequence[nn.Module], memory: Tensor, cache: KVCache) -> None:
    """Before a run's first native step: each layer's cross-attention keys and values of ``memory`` (batch, src_len,
    d_model), and room in its self-attention cache, as the Python modules' first step would store them (the same
    calls), so that the first step can be native too."""
    for layer, self_cache, cross_cache in zip(layers, cache.self_attn, cache.cross_attn):
        keys, values = layer.cross_attn.memory_keys_values(memory)  # (batch, heads, src_len, head_dim)
        cross_cache.update(keys, values)
        none_yet = keys[:, :, :0]  # (batch, heads, 0, head_dim): allocates the buffers, stores nothing
        self_cache.update(none_yet, none_yet)


def decoder_step(layers: Sequence[nn.Module], x: Tensor, memory_mask: Tensor | None, cache: KVCache) -> Tensor:
    """x (batch, 1, d_model) -> (batch, 1, d_model): every layer of ``layers`` for one new position, before the
    stack's final norm. ``memory_mask``: (batch, src_len), True = real source token, or None. Updates ``cache``."""
    ops = native_ops()
    state = _run_state(layers, cache)
    assert ops is not None and isinstance(state, _State), "call applies() first"
    buffers = [c.reserve(1) for c in cache.self_attn]
    mask = None if memory_mask is None else memory_mask[:, None, None, :]  # (batch, 1, 1, src_len)
    out = ops.decoder_step(  # type: ignore[attr-defined]
        x[:, 0], state.tensors, state.packed, state.row_packed, [k for k, _ in buffers], [v for _, v in buffers],
        cache.length, [c.keys for c in cache.cross_attn], [c.values for c in cache.cross_attn], mask,
        state.heads, state.eps, state.norm_first, state.activation, WIDE_OUTPUT, state.int8,
    )
    for c in cache.self_attn:
        c.advance(1)
    return out[:, None]


def encoder_state(layers: Sequence[nn.Module], x: Tensor, src_mask: Tensor | None, need_weights: bool
                  ) -> _State | str:
    """What the C++ encoder needs to compute this encoder-stack call exactly as the Python modules would (the
    layers' gathered tensors), or why it cannot. ``x`` (batch, src_len, d_model); ``src_mask`` after
    ``without_trivial_mask`` (the C++ encoder takes no padding)."""
    if not fast_paths_enabled():
        return "fast paths disabled"
    if src_mask is not None:
        return "padded sources (the C++ encoder takes unpadded batches)"
    if x.dim() != 3 or x.size(1) == 0:
        return "an empty or malformed input"
    return _step_state(layers, x, None, need_weights, lambda: _kept_state(layers))


def encoder_applies(layers: Sequence[nn.Module], x: Tensor, src_mask: Tensor | None, need_weights: bool) -> str:
    """``encoder_state``'s reason, or "" when the C++ encoder applies."""
    state = encoder_state(layers, x, src_mask, need_weights)
    return state if isinstance(state, str) else ""


def encoder_layers(state: _State, x: Tensor) -> Tensor:
    """x (batch, src_len, d_model) -> (batch, src_len, d_model): every layer of an encoder stack, before its final
    norm, in C++; ``state`` from ``encoder_state``."""
    ops = native_ops()
    assert ops is not None
    return ops.encoder_layers(  # type: ignore[attr-defined]
        x, state.tensors, state.packed, state.row_packed, state.heads, state.eps, state.norm_first, state.activation,
        WIDE_OUTPUT, state.int8,
    )


class _State:
    """The tensors the C++ step (decoder layers) or encoder (encoder layers) reads, gathered once per decoding run
    (one ``KVCache``) or encoder weights."""

    def __init__(self, layers: list[DecoderLayer] | list[EncoderLayer]) -> None:
        first = layers[0]
        self.heads = first.self_attn.num_heads
        self.eps = first.self_attn_norm.norm.eps
        self.norm_first = first.self_attn_norm.norm_first
        self.activation = ACTIVATION_CODES[first.ffn.activation]
        self.dtype = first.self_attn_norm.norm.weight.dtype
        self.tensors: list[Tensor] = []  # LAYER_TENSORS for each layer in turn
        packed: list[Tensor | None] = []  # oneDNN copies at the float weights' places, None elsewhere
        row_packed: list[Tensor | None] = []  # the row kernel's copies, likewise
        int8: list[object | None] = []  # the int8 copy's packed products at their weights' places, None elsewhere
        copies: list[Tensor | None] = []
        row_copies: list[Tensor | None] = []
        for layer in layers:
            for products, add_norm in sublayers(layer):
                for linear, rows in products:
                    if isinstance(linear, Int8Linear):
                        self.tensors += [torch.Tensor(), torch.Tensor()]  # unused: the int8 product has its own
                        packed += [None, None]
                        row_packed += [None, None]
                        int8 += [int8_block(linear, rows), None]
                        continue
                    block = linear.block(rows)
                    copies.append(linear.packed_weight(rows))
                    row_copies.append(linear.row_packed_weight(rows))  # NO_ROW_COPY for weights the kernel never takes
                    self.tensors += [block.weight.detach(), block.bias.detach()]
                    packed += [copies[-1], None]
                    row_packed += [row_copies[-1], None]
                    int8 += [None, None]
                self.tensors += [add_norm.norm.weight.detach(), add_norm.norm.bias.detach()]
                packed += [None, None]
                row_packed += [None, None]
                int8 += [None, None]
        per_layer = ENCODER_LAYER_TENSORS if isinstance(first, EncoderLayer) else LAYER_TENSORS
        assert len(self.tensors) == len(layers) * len(per_layer)
        # Without a copy for every float product none is passed, and the C++ step multiplies several rows by the
        # plain product, as tformer.nn.linear does without one.
        missing = any(copy is None for copy in copies)
        self.packed = [] if missing else [torch.Tensor() if t is None else t for t in packed]
        # Likewise for the row kernel's copies (then few rows take the forms above, as tformer.nn.linear does).
        missing = any(copy is None for copy in row_copies)
        self.row_packed = [] if missing else [torch.Tensor() if t is None else t for t in row_packed]
        self.int8 = native_ops().Int8Products(int8) if any(p is not None for p in int8) else None  # type: ignore
        self.int8_blocks = int8  # kept alive while this state is (their ids are in its fingerprint)


def int8_block(linear: Int8Linear, rows: slice | None) -> object | None:
    """fbgemm's packed weight and bias that ``linear`` multiplies by for its output rows ``rows`` (None: all), or
    None when those rows are not one of its blocks (its ``forward`` would then join several)."""
    try:
        return linear.packed_rows(rows)
    except ValueError:
        return None


# What each decoding run (one KVCache) keeps: the layers it was gathered for, and their _State or the reason they
# cannot take the native step. Kept here rather than on the cache; an entry goes when its cache is freed.
_runs: weakref.WeakKeyDictionary[KVCache, tuple[Sequence[nn.Module], _State | str]] = weakref.WeakKeyDictionary()


def _run_state(layers: Sequence[nn.Module], cache: KVCache) -> _State | str:
    """The ``_State`` of this run (made on its first native step), or why its layers cannot take the step."""
    known = _runs.get(cache)
    if known is None or known[0] is not layers:
        known = _runs[cache] = (layers, _kept_state(layers))
    return known[1]


# The last _State of each stack of layers, with the fingerprint of the weights it was gathered from: a run reuses it
# while the layers hold the same tensors at the same versions (gathering costs about as much as a decoding step).
_kept: weakref.WeakKeyDictionary[object, tuple[tuple, _State | str]] = weakref.WeakKeyDictionary()


def _kept_state(layers: Sequence[nn.Module]) -> _State | str:
    """``_state(layers)``, reused from an earlier run when the layers' fingerprint is unchanged."""
    key = _fingerprint(layers)
    if key is None:
        return _state(layers)
    kept = _kept.get(layers)
    if kept is None or kept[0] != key:
        kept = _kept[layers] = (key, _state(layers))
    return kept[1]


def _fingerprint(layers: Sequence[nn.Module]) -> tuple | None:
    """Every module, parameter (storage and version) and int8 packed block of ``layers``; None when that cannot
    tell a change (a plain list, or weights made under inference mode, which have no version counter)."""
    if not isinstance(layers, nn.Module):
        return None
    modules = list(layers.modules())
    parameters = [p for m in modules for p in m._parameters.values() if p is not None]  # one walk, not two
    if any(p.is_inference() for p in parameters):
        return None
    return (tuple(map(id, modules)), tuple((p.data_ptr(), p._version, p.dtype) for p in parameters),
            tuple(id(m.packed_rows(slice(a, b))) for m in modules if isinstance(m, Int8Linear)
                  for a, b in zip(m.bounds, m.bounds[1:])))


def _state(layers: Sequence[nn.Module]) -> _State | str:
    """The run's ``_State``, or the reason some layer is not one the C++ step knows."""
    layers = list(layers)
    if not layers:
        return "no layers"
    encoder = all(type(layer) is EncoderLayer for layer in layers)
    if not encoder and not all(isinstance(layer, DecoderLayer) for layer in layers):
        return "a layer is not a tformer.nn DecoderLayer" if not isinstance(layers[0], EncoderLayer) \
            else "a layer is not a tformer.nn EncoderLayer"
    first = layers[0]
    parts = [part for layer in layers for part in sublayers(layer)]
    for linear, rows in (product for products, _ in parts for product in products):
        if isinstance(linear, Int8Linear):
            if int8_block(linear, rows) is None:
                return "an int8 product's rows are not one of its packed blocks"
        elif type(linear) is not Linear or linear.bias is None:
            return "a product is neither a tformer.nn.linear.Linear with a bias nor a tformer.nn.quantized.Int8Linear"
    weights = [t for products, norm in parts for t in (norm.norm.weight, *(linear.weight for linear, _ in products
                                                                           if not isinstance(linear, Int8Linear)))]
    if len({t.dtype for t in weights}) > 1 or weights[0].dtype not in STEP_DTYPES:
        return f"the layers' weights are {sorted({str(t.dtype) for t in weights})} (the step takes one of float32, " \
               "bfloat16)"
    if not all(n.norm.eps == first.self_attn_norm.norm.eps and n.norm_first == first.self_attn_norm.norm_first
               for _, n in parts):
        return "the layers' norms differ (eps or placement)"
    attentions = [(layer, attention) for layer in layers
                  for attention in ((layer.self_attn,) if encoder else (layer.self_attn, layer.cross_attn))]
    if not all(attention.num_heads == first.self_attn.num_heads and layer.ffn.activation == first.ffn.activation
               for layer, attention in attentions):
        return "the layers differ in heads or activation"
    if any(getattr(attention, "num_kv_heads", attention.num_heads) != attention.num_heads
           for _, attention in attentions):
        return "grouped-query attention (the step takes as many key/value heads as query heads)"
    if first.ffn.activation not in ACTIVATION_CODES:
        return f"activation {first.ffn.activation!r} is not one the C++ step knows"
    return _State(layers)  # type: ignore[arg-type]


def sublayers(layer: DecoderLayer | EncoderLayer) -> list[tuple[list[tuple[Linear, slice | None]], AddNorm]]:
    """The layer's sub-layers in ``LAYER_TENSORS``' order (an encoder layer's two: ``ENCODER_LAYER_TENSORS``),
    each as its two products (a linear layer and the output rows used: cross-attention multiplies by the query rows
    of its fused projection only) and its Add & Norm."""
    d = layer.self_attn.d_model
    if isinstance(layer, EncoderLayer):
        return [
            ([(layer.self_attn.in_proj, None), (layer.self_attn.out_proj, None)], layer.self_attn_norm),
            ([(layer.ffn.linear1, None), (layer.ffn.linear2, None)], layer.ffn_norm),
        ]
    return [
        ([(layer.self_attn.in_proj, None), (layer.self_attn.out_proj, None)], layer.self_attn_norm),
        ([(layer.cross_attn.in_proj, slice(0, d)), (layer.cross_attn.out_proj, None)], layer.cross_attn_norm),
        ([(layer.ffn.linear1, None), (layer.ffn.linear2, None)], layer.ffn_norm),
    ]
