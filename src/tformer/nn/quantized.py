"""Int8 weights for CPU inference: linear layers whose weights are stored as int8, one scale per output row.

Decoding one sentence at a time reads every weight once per generated token, so storing weights in a quarter of
the bytes makes batch-1 decoding faster. Two kinds, with the same calls (``layer(x, rows=..., activation=...)``,
``layer.rows(x, rows)``):

- ``Int8Linear`` ("dynamic", PyTorch's fbgemm kernels) also quantizes each input on the fly, with one scale per
  call, and multiplies in int8: fast at every batch size, but an input with a few large values (the activation
  outliers of many language models) loses its small ones, and a sentence's result can depend a little on the rest
  of its batch. Fine for the translation models (the benchmark reports the BLEU change).
- ``Int8WeightOnlyLinear`` (weight-only, ``torch._weight_int8pack_mm``) keeps the input unquantized: each weight is
  turned back into a float inside the product. Rows are independent of each other and the result only differs
  from the float layer by the weights' rounding; this is the kind language models need.

Inference only: these layers have no gradients.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tformer.nn.fast import fast_paths_enabled
from tformer.nn.linear import activate


class Int8Linear(nn.Module):
    """``y = x Wᵀ + b`` with W in int8. Rows may be split into blocks that are packed separately, so a caller can
    multiply by one block alone (cross-attention uses the query rows and the key/value rows of a fused in_proj).

    Args:
        weight: (out_features, in_features) float weight; bias: (out_features,) or None.
        blocks: row indices where a new block starts, e.g. ``(d,)`` splits rows into ``[:d]`` and ``[d:]``.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, blocks: Sequence[int] = ()) -> None:
        super().__init__()
        self.in_features, self.out_features = weight.size(1), weight.size(0)
        self.bounds = [0, *blocks, self.out_features]
        if sorted(set(self.bounds)) != self.bounds:
            raise ValueError(f"blocks must be increasing row indices inside (0, {self.out_features}), got {blocks}")
        weight, bias = weight.detach().float(), None if bias is None else bias.detach().float()
        self._packed = [
            _pack(weight[start:stop], None if bias is None else bias[start:stop])
            for start, stop in zip(self.bounds, self.bounds[1:])
        ]

    @classmethod
    def from_linear(cls, linear: nn.Linear, blocks: Sequence[int] = ()) -> Int8Linear:
        return cls(linear.weight, linear.bias, blocks)

    def forward(self, x: Tensor, rows: slice | None = None, activation: str | None = None) -> Tensor:
        """x: (..., in_features) -> (..., out_features), or (..., rows) for ``rows`` = one block's row range;
        ``activation`` as in ``tformer.nn.linear.Linear``."""
        if rows is not None:
            out = self.rows(x, rows)
        else:
            outputs = [torch.ops.quantized.linear_dynamic(x, packed, True) for packed in self._packed]
            out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
        return out if activation is None else activate(out, activation)

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` only, which must be one of the layer's blocks (as ``Linear.rows``)."""
        return torch.ops.quantized.linear_dynamic(x, self.packed_rows(rows), True)

    def packed_rows(self, rows: slice | None = None) -> torch.ScriptObject:
        """fbgemm's packed weight (and bias) of the block ``rows`` (None: the whole layer, which must then be one
        block), for code that calls ``torch.ops.quantized.linear_dynamic`` itself (tformer.nn.native)."""
        start, stop = (0, self.out_features) if rows is None else rows.indices(self.out_features)[:2]
        for (a, b), packed in zip(zip(self.bounds, self.bounds[1:]), self._packed):
            if (a, b) == (start, stop):
                return packed
        raise ValueError(f"rows {start}:{stop} are not one of this layer's blocks {self.bounds}")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, blocks={self.bounds[1:-1]}"


def _pack(weight: Tensor, bias: Tensor | None) -> torch.ScriptObject:
    """Symmetric per-row int8 quantization, packed for fbgemm."""
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()  # (rows,)
    with warnings.catch_warnings():  # quantized tensors are deprecated in favour of torchao; fine with pinned torch
        warnings.simplefilter("ignore")
        qweight = torch.quantize_per_channel(weight, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(qweight, bias)


class Int8WeightOnlyLinear(nn.Module):
    """``y = x (s ⊙ Q)ᵀ + b``: the weight stored as int8 Q (out_features, in_features) with one float scale per
    output row, ``s = max |W_row| / 127``, and the input left as it is (not quantized).

    The product runs in ``compute_dtype``: the input is rounded to it, the output comes back in the input's dtype.
    PyTorch's CPU kernel (``torch._weight_int8pack_mm``) is vectorised for bfloat16 inputs and plain C++ for
    float32 ones, which makes float32 several times slower than the float layer itself (benchmarks/causal_lm.py
    measures both); bfloat16 is the default. Where the kernel is missing, or with the fast paths turned off
    (``tformer.nn.fast``), the product is ``F.linear`` with the dequantized weight, the reference the tests use.

    Args:
        weight: (out_features, in_features) float weight; bias: (out_features,) or None.
        compute_dtype: torch.bfloat16 or torch.float32.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, compute_dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        if compute_dtype not in (torch.bfloat16, torch.float32):
            raise ValueError(f"compute_dtype must be torch.bfloat16 or torch.float32, got {compute_dtype}")
        self.out_features, self.in_features = weight.shape
        self.compute_dtype = compute_dtype
        qweight, scales = quantize_rows(weight.detach().float())
        self.register_buffer("qweight", qweight)  # (out_features, in_features) int8
        self.register_buffer("scales", scales.to(compute_dtype))  # (out_features,)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, compute_dtype: torch.dtype = torch.bfloat16) -> Int8WeightOnlyLinear:
        return cls(linear.weight, linear.bias, compute_dtype)

    def forward(self, x: Tensor, rows: slice | None = None, activation: str | None = None) -> Tensor:
        """x: (..., in_features) -> (..., out_features), or (..., len(rows)) for the output rows ``rows`` (any
        range: the weight is not packed in blocks); ``activation`` as in ``tformer.nn.linear.Linear``."""
        out = self.rows(x, rows if rows is not None else slice(None))
        return out if activation is None else activate(out, activation)

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` of the weight only (e.g. the query block of a fused Q/K/V layer)."""
        start, stop = rows.indices(self.out_features)[:2]
        if x.size(-1) != self.in_features:
            raise ValueError(f"input has {x.size(-1)} features, expected in_features={self.in_features}")
        qweight, scales = self.qweight[start:stop], self.scales[start:stop]  # row slices stay contiguous
        flat = x.reshape(-1, self.in_features).to(self.compute_dtype).contiguous()  # (rows, in_features)
        if weight_only_kernel_unavailable(flat):
            out = F.linear(flat.float(), qweight.float() * scales.float()[:, None]).to(self.compute_dtype)
        else:
            out = torch._weight_int8pack_mm(flat, qweight, scales)  # (rows, stop - start)
        out = out.to(x.dtype).view(*x.shape[:-1], stop - start)
        return out if self.bias is None else out + self.bias[start:stop].to(x.dtype)

    def dequantized_weight(self) -> Tensor:
        """(out_features, in_features) float32: the weight this layer multiplies by."""
        return self.qweight.float() * self.scales.float()[:, None]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"compute_dtype={self.compute_dtype}, bias={self.bias is not None}")


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-row int8: (int8 Q (out, in), float32 scales (out,)) with ``weight ≈ Q * scales[:, None]``."""
    scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)  # (out,)
    qweight = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return qweight.contiguous(), scales


# PyTorch 2.13's CPU kernel reads the input in steps of 16 values: other widths crash it or give wrong sums.
KERNEL_K_MULTIPLE = 16


def weight_only_kernel_unavailable(x: Tensor) -> str:
    """Why ``torch._weight_int8pack_mm`` cannot take ``x`` (rows, in_features); "" when it can."""
    if not fast_paths_enabled():
        return "fast paths disabled"
    if x.device.type != "cpu":
        return f"input on {x.device.type}, the kernel used here is the CPU one"
    if x.size(-1) % KERNEL_K_MULTIPLE:
        return f"in_features={x.size(-1)} is not a multiple of {KERNEL_K_MULTIPLE}"
    if not _int8pack_kernel_works(x.dtype):
        return f"this PyTorch has no working torch._weight_int8pack_mm for {x.dtype} inputs"
    return ""


@functools.cache
def _int8pack_kernel_works(dtype: torch.dtype) -> bool:
    """Whether ``torch._weight_int8pack_mm`` exists here and computes a small product right for ``dtype``."""
    if not hasattr(torch, "_weight_int8pack_mm"):
        return False
    qweight = torch.arange(-KERNEL_K_MULTIPLE, KERNEL_K_MULTIPLE, dtype=torch.int8).view(2, KERNEL_K_MULTIPLE)
    x = torch.ones(3, KERNEL_K_MULTIPLE, dtype=dtype)
    try:
        out = torch._weight_int8pack_mm(x, qweight, torch.tensor([1.0, 0.5], dtype=dtype))
    except (RuntimeError, NotImplementedError):
        return False
    expected = (x.float() @ qweight.float().t()) * torch.tensor([1.0, 0.5])  # (3, 2)
    return out.shape == (3, 2) and torch.equal(out.float(), expected)


class Int4WeightOnlyLinear(nn.Module):
    """``y = x Ŵᵀ + b`` with Ŵ stored in 4 bits a weight: each row is cut into groups of ``group_size`` inputs, and
    a group's weights are kept as codes q in 0..15 with ``w ≈ low + step · q`` (low: the group's smallest weight,
    step: its range / 15). That is the layout of GGUF's Q4_1, so weights that were read from a Q4_1 file come back
    exactly, but for the rounding of ``step`` and ``low`` to bfloat16 (the kernel's dtype); other weights are rounded
    to 16 levels per group.

    The product is ``torch._weight_int4pack_mm_for_cpu`` in bfloat16 (the input rounded to it, the output cast back
    to the input's dtype). It needs ``group_size`` in 32, 64, 128, 256 dividing in_features and out_features a
    multiple of 16; elsewhere, where the kernel is missing, or with the fast paths off, the product is ``F.linear``
    with the dequantized weight. ``rows`` computes every row and keeps some (the packed layout interleaves rows).

    Args:
        weight: (out_features, in_features) float weight; bias: (out_features,) or None.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, group_size: int = 32) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        if group_size <= 0 or self.in_features % group_size:
            raise ValueError(f"group_size must divide in_features={self.in_features}, got {group_size}")
        self.group_size = group_size
        codes, low, step = quantize_groups(weight.detach().float(), group_size)
        self.register_buffer("codes", codes)  # (out_features, in_features) uint8 in 0..15
        # the kernel's form: w = (q - 8) · scale + zero, per (group, row): (groups, out_features, 2)
        scales_and_zeros = torch.stack([step.t(), (low + 8 * step).t()], dim=-1).to(torch.bfloat16)
        self.register_buffer("scales_and_zeros", scales_and_zeros.contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.why_not_kernel = int4_kernel_unavailable(self.in_features, self.out_features, group_size)
        packed = None if self.why_not_kernel else torch._convert_weight_to_int4pack_for_cpu(codes.int(), 1)
        self.register_buffer("packed", packed, persistent=False)  # (out_features, in_features / 2) uint8

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int = 32) -> Int4WeightOnlyLinear:
        return cls(linear.weight, linear.bias, group_size)

    def forward(self, x: Tensor, rows: slice | None = None, activation: str | None = None) -> Tensor:
        """x: (..., in_features) -> (..., out_features), or (..., len(rows)) for the output rows ``rows``;
        ``activation`` as in ``tformer.nn.linear.Linear``."""
        if x.size(-1) != self.in_features:
            raise ValueError(f"input has {x.size(-1)} features, expected in_features={self.in_features}")
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()  # (rows, in_features)
        if self.packed is None or not fast_paths_enabled() or flat.device.type != "cpu":
            out = F.linear(flat.float(), self.dequantized_weight()).to(torch.bfloat16)
        else:
            out = torch._weight_int4pack_mm_for_cpu(flat, self.packed, self.group_size, self.scales_and_zeros)
        out = out.to(x.dtype).view(*x.shape[:-1], self.out_features)  # (..., out_features)
        if self.bias is not None:
            out = out + self.bias.to(x.dtype)
        if rows is not None:
            out = out[..., rows]
        return out if activation is None else activate(out, activation)

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` of the weight (all rows are computed)."""
        return self(x, rows)

    def dequantized_weight(self) -> Tensor:
        """(out_features, in_features) float32: the weight this layer multiplies by."""
        scale, zero = self.scales_and_zeros.float().unbind(-1)  # each (groups, out_features)
        codes = self.codes.float().view(self.out_features, -1, self.group_size)  # (out, groups, group_size)
        weight = (codes - 8) * scale.t()[..., None] + zero.t()[..., None]
        return weight.view(self.out_features, self.in_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}, "
                f"bias={self.bias is not None}")


def quantize_groups(weight: Tensor, group_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Asymmetric 4-bit rounding per group of ``group_size`` inputs (GGUF's Q4_1): codes (out, in) uint8 in 0..15,
    low and step (out, in / group_size), with ``weight ≈ low + step · codes`` group by group."""
    out_features, in_features = weight.shape
    groups = weight.view(out_features, in_features // group_size, group_size)  # (out, groups, group_size)
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)  # each (out, groups)
    step = ((high - low) / 15).clamp(min=1e-12)
    codes = torch.round((groups - low[..., None]) / step[..., None]).clamp(0, 15).to(torch.uint8)
    return codes.view(out_features, in_features), low, step


INT4_GROUP_SIZES = (32, 64, 128, 256)  # what PyTorch's CPU kernel takes


def int4_kernel_unavailable(in_features: int, out_features: int, group_size: int) -> str:
    """Why ``torch._weight_int4pack_mm_for_cpu`` cannot run this layer; "" when it can."""
    if not hasattr(torch, "_weight_int4pack_mm_for_cpu") or not hasattr(torch, "_convert_weight_to_int4pack_for_cpu"):
        return "this PyTorch has no CPU int4 kernel"
    if group_size not in INT4_GROUP_SIZES:
        return f"group_size={group_size} is not one of {INT4_GROUP_SIZES}"
    if out_features % 16:
        return f"out_features={out_features} is not a multiple of 16"
    return ""


QUANTIZED_KINDS = ("dynamic", "weight_only", "int4_weight_only")


def quantize_linear_layers(
    module: nn.Module,
    blocks: dict[nn.Linear, Sequence[int]] | None = None,
    kind: str = "dynamic",
    compute_dtype: torch.dtype = torch.bfloat16,
) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (in place) by an int8 layer; returns ``module``.

    Args:
        blocks: (kind "dynamic") the layers whose rows must stay usable in separate blocks (see ``Int8Linear``);
            weight-only layers take any row range.
        kind: "dynamic" (``Int8Linear``), "weight_only" (``Int8WeightOnlyLinear`` computing in
            ``compute_dtype``) or "int4_weight_only" (``Int4WeightOnlyLinear``, groups of 32, bfloat16; a layer
            whose in_features is not a multiple of 32 gets ``Int8WeightOnlyLinear``).
    """
    if kind not in QUANTIZED_KINDS:
        raise ValueError(f"kind must be one of {', '.join(QUANTIZED_KINDS)}, got {kind!r}")
    blocks = blocks or {}
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, nn.Linear):
                continue
            if kind == "dynamic":
                setattr(parent, name, Int8Linear.from_linear(child, blocks.get(child, ())))
            elif kind == "weight_only":
                setattr(parent, name, Int8WeightOnlyLinear.from_linear(child, compute_dtype))
            elif child.in_features % INT4_GROUP_SIZES[0] == 0:
                setattr(parent, name, Int4WeightOnlyLinear.from_linear(child, INT4_GROUP_SIZES[0]))
            else:  # no whole groups of 32 inputs: int8
                setattr(parent, name, Int8WeightOnlyLinear.from_linear(child, compute_dtype))
    return module
