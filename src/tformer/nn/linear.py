"""A linear layer whose CPU inference picks, by the number of input rows, the fastest way to run the product.

``nn.Linear`` keeps its weight W as (out_features, in_features) and computes x · Wᵀ through PyTorch's BLAS (MKL
on x86). For inference on CPU three other forms give the same values faster:

- "rows", 2 to 4 input rows (a decoding step of a few sentences or beams) by a weight of fewer than 2^18 values
  (``row_kernel_takes``): the C++ row kernel (``csrc/row_product.h``) with the weight packed once into blocks of
  16 output features (:class:`PackedWeight` with ``row_layout``); one pass over the weight with each row's sums in
  registers, where oneDNN spends more time setting a product up than multiplying. Larger weights, which a decoding
  step reads from memory rather than from a core's cache, stream faster through oneDNN (measured). Available once
  ``tformer.nn.native`` has loaded its extension (it registers it in ``tformer.nn.kernels``); until
  then, and with ``TFORMER_NATIVE=0``, the forms below take these products. Each row's sums run in the same order
  whatever the other rows, so a sentence's result does not depend on its batch.
- "weight_first", one input row (a decoding step of one sentence): (W · xᵀ)ᵀ with W's rows cut into one block per
  thread (at least two; views of W, no copy) and one batched product (``torch.baddbmm``) over the blocks, which
  spreads the row over the threads, where a plain product of one row uses one core and a slow kernel.
- "packed", every other case: oneDNN's product (``torch.ops.mkldnn._linear_pointwise``, the kernel PyTorch's own
  compiler uses on CPU) with the weight reordered once into oneDNN's blocked layout (:class:`PackedWeight`). It can
  also apply the activation that follows (ReLU or GELU) in the same pass over the output.

The forms were chosen by measurement (per product, per row count, with ``python -m benchmarks.probes forms``); the
table and the reasons for the ``WIDE_OUTPUT`` rule are in ``docs/benchmarks.md``, section "Product forms".

Every form computes the same values up to float rounding order (oneDNN sums in another order: differences of a
few 1e-6 relative). :class:`PackedWeight` reorders again whenever the weight changes (its storage or version
counter), so an optimiser step or ``load_state_dict`` never leaves it stale. With gradients on (training), for
weights made under ``torch.inference_mode`` (no version counter), for other dtypes or devices, or in a PyTorch
built without oneDNN, the plain product runs (one-row products keep the blocked form). With the fast paths turned
off (``TFORMER_FAST=0`` or ``tformer.nn.fast_paths(False)``, see ``tformer.nn.fast``) every product is the plain
``F.linear``, the reference the tests compare the other forms with.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tformer.nn import kernels
from tformer.nn.fast import fast_paths_enabled

WIDE_OUTPUT = 8  # one row: layers at least this many times wider out than in (vocabulary) are packed too
ROW_KERNEL_ROWS = (2, 4)  # the row kernel takes products of this many rows (fewest, most) ...
ROW_KERNEL_WEIGHTS = 1 << 18  # ... by weights of fewer values than this (decoder_step.cpp: row_kernel_takes)
FUSED_ACTIVATIONS = {"relu": ("relu", ""), "gelu": ("gelu", "none"), "gelu_tanh": ("gelu", "tanh")}  # oneDNN names


def row_kernel_takes(rows: int, in_features: int, out_features: int) -> bool:
    """Whether the row kernel takes a product of ``rows`` rows by an (out, in) weight, by the measured rule (see the
    module docstring); decoder_step.cpp's ``row_kernel_takes`` is the same rule."""
    fewest, most = ROW_KERNEL_ROWS
    return fewest <= rows <= most and in_features * out_features < ROW_KERNEL_WEIGHTS


# row_packed_weight's answer for a weight too large for the row kernel: one shared empty tensor (no copy made; the
# C++ step's size rule never reads it), the same object every time, so fingerprints built from ids stay stable.
NO_ROW_COPY = torch.empty(0)


def row_kernel_sized(weight: Tensor) -> bool:
    """Whether the row kernel takes products by ``weight`` at some row count (``row_kernel_takes``' size rule)."""
    out_features, in_features = weight.shape
    return row_kernel_takes(ROW_KERNEL_ROWS[0], in_features, out_features)


def row_layout(weight: Tensor) -> Tensor:
    """The row kernel's copy of a float32 (out, in) weight: (ceil(out / 16), in, 16)."""
    ops = kernels.loaded()
    assert ops is not None, "the row kernel is not loaded"
    return ops.row_pack(weight.detach().contiguous())  # type: ignore[attr-defined]


def onednn_layout(weight: Tensor) -> Tensor:
    """oneDNN's reordered copy of a float32 (out, in) weight, for ``torch.ops.mkldnn._linear_pointwise``."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())


@functools.cache
def packed_products_available() -> bool:
    """Whether this PyTorch has oneDNN's prepacked linear product (x86 and ARM builds normally do)."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 3))  # no version counter read: this may
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 3), packed, None, "none", [], "")  # be inference mode
        return bool(torch.equal(out, torch.full((1, 2), 3.0)))
    except RuntimeError:
        return False


class PackedWeight:
    """A copy of a float32 (out_features, in_features) weight in a kernel's layout, made by ``make`` (oneDNN's
    reorder by default, or ``row_layout``) and made again when the weight changes."""

    def __init__(self, make: Callable[[Tensor], Tensor] = onednn_layout) -> None:
        self._make = make
        # (key it was made for, weak reference to the tensor owning the weight's memory, the copy): one attribute,
        # replaced whole, so a reader in another thread never pairs a key with the wrong copy. The owner check
        # keeps a new weight that reuses a freed one's address (with the same zero version) from matching.
        self._made: tuple[tuple, weakref.ref, Tensor] | None = None

    def __call__(self, weight: Tensor) -> Tensor:
        key = (weight.data_ptr(), weight._version, weight.shape, weight.stride())
        owner = weight if weight._base is None else weight._base  # a row block's owner is the whole weight
        made = self._made
        if made is None or made[0] != key or made[1]() is not owner:
            copy = self._make(weight)
            made = self._made = (key, weakref.ref(owner), copy)
        return made[2]


def packable(weight: Tensor) -> bool:
    """Whether a ``PackedWeight`` copy of ``weight`` can be made and kept current: float32, oneDNN present, and not
    made under ``torch.inference_mode`` (such a weight has no version counter, so a copy could not see it change)."""
    return weight.dtype == torch.float32 and not weight.is_inference() and packed_products_available()


def row_packable(weight: Tensor) -> bool:
    """``packable`` for the row kernel's copy: float32, not made under inference mode, and the kernel loaded."""
    return weight.dtype == torch.float32 and not weight.is_inference() and kernels.loaded() is not None


def product_form(x: Tensor, in_features: int, out_features: int, row_kernel: bool = True) -> str:
    """Which form computes ``x`` (..., in_features) times the weight fastest: "plain" (``F.linear``), "rows" (the
    row kernel where ``row_kernel_takes``, when loaded; not with ``row_kernel=False``), "weight_first" ((W · xᵀ)ᵀ
    by row blocks of W, one row) or "packed" (oneDNN, weight reordered once). Always "plain" with gradients on
    (training) or with the fast paths turned off."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled() or x.numel() == 0:
        return "plain"
    if not fast_paths_enabled():
        return "plain"
    if row_kernel and kernels.loaded() is not None and row_kernel_takes(x.numel() // in_features, in_features,
                                                                    out_features):
        return "rows"
    if x.numel() == in_features and out_features < WIDE_OUTPUT * in_features:
        return "weight_first"
    return "packed" if packed_products_available() else "plain"


def fast_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    packed: PackedWeight | None,
    activation: str | None = None,
    row_packed: PackedWeight | None = None,
) -> Tensor:
    """``act(F.linear(x, weight, bias))``: x (..., in), weight (out, in) -> (..., out), by the fastest form (see the
    module docstring). ``activation``: None or a key of ``FUSED_ACTIVATIONS``. ``packed`` and ``row_packed``: the
    caches of the weight's oneDNN and row-kernel copies. Without them, or for a weight made under
    ``torch.inference_mode``, the "rows" form gives way to the others and the "packed" one to the plain product."""
    out_features, in_features = weight.shape
    form = product_form(x, in_features, out_features, row_packed is not None and row_packable(weight))
    if form == "rows":
        ops = kernels.loaded()
        assert row_packed is not None and ops is not None
        rows = x.reshape(-1, in_features)
        out = ops.row_product(rows, row_packed(weight), bias, out_features)  # type: ignore[attr-defined]
        out = out.view(*x.shape[:-1], out_features)
        return out if activation is None else activate(out, activation)
    if form == "packed" and (packed is None or not packable(weight)):
        form = "weight_first" if x.numel() == in_features else "plain"
    if form == "packed":
        attr, algorithm = FUSED_ACTIVATIONS[activation] if activation is not None else ("none", "")
        assert packed is not None
        return torch.ops.mkldnn._linear_pointwise(x, packed(weight), bias, attr, [], algorithm)
    if form == "weight_first":
        out = _weight_first_row(x.reshape(1, in_features), weight, bias).view(*x.shape[:-1], out_features)
    else:
        out = F.linear(x, weight, bias)
    return out if activation is None else activate(out, activation)


def _weight_first_row(row: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """(W · rowᵀ)ᵀ for one row (1, in) -> (1, out): W's rows cut into blocks (views, no copy), one batched product."""
    out_features = weight.size(0)
    blocks = max(torch.get_num_threads(), 2)  # two blocks beat one even on one thread (measured)
    if out_features % blocks or not weight.is_contiguous():
        blocks = 1
    w_b = weight.view(blocks, out_features // blocks, -1) if blocks > 1 else weight[None]  # (blocks, out/blocks, in)
    row_t = row.t().expand(blocks, -1, 1)  # (blocks, in, 1), a view
    if bias is None:
        out = torch.bmm(w_b, row_t)
    else:
        out = torch.baddbmm(bias.view(blocks, -1, 1), w_b, row_t)  # (blocks, out / blocks, 1)
    return out.view(1, out_features)


def activate(x: Tensor, activation: str) -> Tensor:
    """The activation named by a key of ``FUSED_ACTIVATIONS``, applied on its own."""
    if activation == "relu":
        return F.relu(x)
    return F.gelu(x, approximate="tanh" if activation == "gelu_tanh" else "none")


class Linear(nn.Linear):
    """``torch.nn.Linear`` (same parameters, same state dict) with the faster CPU inference of ``fast_linear``."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: torch.device | str | None = None
    ) -> None:
        super().__init__(in_features, out_features, bias, device=device)
        self.packed = PackedWeight()
        self.row_packed = PackedWeight(row_layout)
        # The two copies of output-row blocks (see ``rows``), per (start, stop).
        self._row_blocks: dict[tuple[int, int], tuple[PackedWeight, PackedWeight]] = {}

    def forward(self, x: Tensor, activation: str | None = None) -> Tensor:
        """x (..., in_features) -> (..., out_features); ``activation`` ("relu", "gelu", "gelu_tanh") is applied
        to the output, in the same pass where the product form allows."""
        return fast_linear(x, self.weight, self.bias, self.packed, activation, self.row_packed)

    def packed_weight(self, rows: slice | None = None) -> Tensor | None:
        """oneDNN's copy of the weight (or of its output rows ``rows``) for code that calls the packed product
        itself (tformer.nn.native); None where the packed form is unavailable."""
        block = self.block(rows)
        return block.packed(block.weight) if packable(block.weight) else None

    def row_packed_weight(self, rows: slice | None = None) -> Tensor | None:
        """The row kernel's copy of the weight (or of its output rows ``rows``), for tformer.nn.native; None where
        the "rows" form is unavailable; ``NO_ROW_COPY`` for a weight too large for the kernel (a vocabulary
        projection, a large feed-forward layer)."""
        block = self.block(rows)
        if not row_packable(block.weight):
            return None
        return block.row_packed(block.weight) if row_kernel_sized(block.weight) else NO_ROW_COPY

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` of the weight only (e.g. the query block of a fused Q/K/V layer)."""
        block = self.block(rows)
        return fast_linear(x, block.weight, block.bias, block.packed, row_packed=block.row_packed)

    def block(self, rows: slice | None) -> WeightBlock:
        """The weight and bias of the output rows ``rows`` (all for None) and the caches of their copies."""
        if rows is None:
            return WeightBlock(self.weight, self.bias, self.packed, self.row_packed)
        start, stop = rows.indices(self.out_features)[:2]
        packed, row_packed = self._row_blocks.setdefault((start, stop), (PackedWeight(), PackedWeight(row_layout)))
        bias = None if self.bias is None else self.bias[start:stop]
        return WeightBlock(self.weight[start:stop], bias, packed, row_packed)


class WeightBlock(NamedTuple):
    """Some output rows of a ``Linear`` (or all): their weight and bias (views) and the caches of their copies."""

    weight: Tensor
    bias: Tensor | None
    packed: PackedWeight
    row_packed: PackedWeight
