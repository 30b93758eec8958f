"""A linear layer whose CPU inference reads its weight in the layout that is fastest for few rows.

``nn.Linear`` keeps its weight as (out_features, in_features) and computes x · Wᵀ. On CPU, with few input rows (a
decoding step: one row per sentence or beam), PyTorch's matrix product is much faster when the weight is stored
(in_features, out_features) and the layer is not narrowing. Measured on this project's benchmark machine (2 threads,
weights not in cache), one row: 256 -> 768 2.3x, 256 -> 1024 3.3x, 256 -> 8000 2.7x faster; 1024 -> 256 1.7x
*slower*, so narrowing layers keep the plain product; at 32 rows the gain is 1.05-1.25x, at 128 rows none.

:class:`TransposedWeight` holds that copy and makes it again whenever the weight changes (its storage or version
counter), so an optimiser step or ``load_state_dict`` never leaves it stale. Training (gradients on) and other
devices always use the plain product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_ROWS = 32  # above this many input rows the layouts run at the same speed


class TransposedWeight:
    """A contiguous (in_features, out_features) copy of a (out_features, in_features) weight, for inference."""

    def __init__(self) -> None:
        # ((data_ptr, version) of the weight it was made from, the copy): one attribute, replaced whole, so a
        # reader in another thread never pairs a key with the wrong copy.
        self._made: tuple[tuple[int, int], Tensor] | None = None

    def __call__(self, weight: Tensor) -> Tensor:
        key = (weight.data_ptr(), weight._version)
        made = self._made
        if made is None or made[0] != key:
            made = self._made = (key, weight.detach().t().contiguous())
        return made[1]


def use_transposed(x: Tensor, in_features: int, out_features: int, max_rows: int | None = MAX_ROWS) -> bool:
    """Whether a product of ``x`` (..., in_features) with a weight is faster from the transposed copy."""
    if x.device.type != "cpu" or torch.is_grad_enabled() or out_features < in_features:
        return False
    return max_rows is None or x.numel() <= max_rows * in_features


def transposed_linear(x: Tensor, weight_t: Tensor, bias: Tensor | None) -> Tensor:
    """x (..., in) times weight_t (in, out) plus bias -> (..., out); the same values as ``F.linear``."""
    flat = x.reshape(-1, x.size(-1))  # (rows, in)
    out = torch.mm(flat, weight_t) if bias is None else torch.addmm(bias, flat, weight_t)
    return out.view(*x.shape[:-1], weight_t.size(1))


class Linear(nn.Linear):
    """``torch.nn.Linear`` (same parameters, same state dict) with the faster few-row CPU inference path."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.transposed = TransposedWeight()

    def forward(self, x: Tensor) -> Tensor:
        if use_transposed(x, self.in_features, self.out_features):
            return transposed_linear(x, self.transposed(self.weight), self.bias)
        return F.linear(x, self.weight, self.bias)

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` of the weight only (e.g. the query block of a fused Q/K/V layer).
        Always the plain product: a column block of the transposed copy measured no faster."""
        return F.linear(x, self.weight[rows], None if self.bias is None else self.bias[rows])
