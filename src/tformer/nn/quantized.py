"""Int8 weights for CPU inference: linear layers whose weights are stored as int8 (one scale per output row) and
whose inputs are quantized on the fly (PyTorch's fbgemm "dynamic" kernels).

Decoding one sentence at a time reads every weight once per generated token, so storing weights in a quarter of
the bytes makes batch-1 decoding faster; larger batches gain from int8 matrix products. The results change
slightly (the benchmark reports the BLEU change), and since each call quantizes its whole input with one scale,
a sentence's result can depend a little on the rest of its batch. Inference only: these layers have no gradients.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

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
        start, stop = rows.indices(self.out_features)[:2]
        for (a, b), packed in zip(zip(self.bounds, self.bounds[1:]), self._packed):
            if (a, b) == (start, stop):
                return torch.ops.quantized.linear_dynamic(x, packed, True)
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


def quantize_linear_layers(module: nn.Module, blocks: dict[nn.Linear, Sequence[int]] | None = None) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (in place) by an ``Int8Linear``; returns ``module``.

    ``blocks`` names the layers whose rows must stay usable in separate blocks (see ``Int8Linear``).
    """
    blocks = blocks or {}
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear.from_linear(child, blocks.get(child, ())))
    return module
