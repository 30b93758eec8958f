"""A linear layer whose CPU inference picks, by the number of input rows, the fastest way to run the product.

``nn.Linear`` keeps its weight W as (out_features, in_features) and computes x · Wᵀ through PyTorch's BLAS (MKL
on x86). For inference on CPU two other forms give the same values faster:

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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tformer.nn.fast import fast_paths_enabled

WIDE_OUTPUT = 8  # one row: layers at least this many times wider out than in (vocabulary) are packed too
FUSED_ACTIVATIONS = {"relu": ("relu", ""), "gelu": ("gelu", "none"), "gelu_tanh": ("gelu", "tanh")}  # oneDNN names


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
    """oneDNN's reordered copy of a float32 (out_features, in_features) weight, made again when the weight changes."""

    def __init__(self) -> None:
        # (key it was made for, weak reference to the tensor owning the weight's memory, the copy): one attribute,
        # replaced whole, so a reader in another thread never pairs a key with the wrong copy. The owner check
        # keeps a new weight that reuses a freed one's address (with the same zero version) from matching.
        self._made: tuple[tuple, weakref.ref, Tensor] | None = None

    def __call__(self, weight: Tensor) -> Tensor:
        key = (weight.data_ptr(), weight._version, weight.shape, weight.stride())
        owner = weight if weight._base is None else weight._base  # a row block's owner is the whole weight
        made = self._made
        if made is None or made[0] != key or made[1]() is not owner:
            copy = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())
            made = self._made = (key, weakref.ref(owner), copy)
        return made[2]


def packable(weight: Tensor) -> bool:
    """Whether a ``PackedWeight`` copy of ``weight`` can be made and kept current: float32, oneDNN present, and not
    made under ``torch.inference_mode`` (such a weight has no version counter, so a copy could not see it change)."""
    return weight.dtype == torch.float32 and not weight.is_inference() and packed_products_available()


def product_form(x: Tensor, in_features: int, out_features: int) -> str:
    """Which form computes ``x`` (..., in_features) times the weight fastest: "plain" (``F.linear``),
    "weight_first" ((W · xᵀ)ᵀ by row blocks of W, one row) or "packed" (oneDNN, weight reordered once). Always
    "plain" with gradients on (training) or with the fast paths turned off."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled() or x.numel() == 0:
        return "plain"
    if not fast_paths_enabled():
        return "plain"
    if x.numel() == in_features and out_features < WIDE_OUTPUT * in_features:
        return "weight_first"
    return "packed" if packed_products_available() else "plain"


def fast_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    packed: PackedWeight | None,
    activation: str | None = None,
) -> Tensor:
    """``act(F.linear(x, weight, bias))``: x (..., in), weight (out, in) -> (..., out), by the fastest form (see the
    module docstring). ``activation``: None or a key of ``FUSED_ACTIVATIONS``. Without a ``packed`` cache, or for a
    weight made under ``torch.inference_mode``, the "packed" form falls back to the plain one."""
    out_features, in_features = weight.shape
    form = product_form(x, in_features, out_features)
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
        self._row_blocks: dict[tuple[int, int], PackedWeight] = {}  # packed copies of row blocks, see ``rows``

    def forward(self, x: Tensor, activation: str | None = None) -> Tensor:
        """x (..., in_features) -> (..., out_features); ``activation`` ("relu", "gelu", "gelu_tanh") is applied
        to the output, in the same pass where the product form allows."""
        return fast_linear(x, self.weight, self.bias, self.packed, activation)

    def packed_weight(self, rows: slice | None = None) -> Tensor | None:
        """oneDNN's copy of the weight (or of its output rows ``rows``) for code that calls the packed product
        itself (tformer.nn.native); None where the packed form is unavailable."""
        weight, _, packed = self.block(rows)
        return packed(weight) if packable(weight) else None

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` of the weight only (e.g. the query block of a fused Q/K/V layer)."""
        return fast_linear(x, *self.block(rows))

    def block(self, rows: slice | None) -> tuple[Tensor, Tensor | None, PackedWeight]:
        """The weight and bias of the output rows ``rows`` (all for None) and the cache of their packed copy."""
        if rows is None:
            return self.weight, self.bias, self.packed
        start, stop = rows.indices(self.out_features)[:2]
        packed = self._row_blocks.setdefault((start, stop), PackedWeight())
        return self.weight[start:stop], None if self.bias is None else self.bias[start:stop], packed
