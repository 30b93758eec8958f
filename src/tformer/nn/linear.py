"""A linear layer whose CPU inference picks, by the number of input rows, the fastest way to run the product.

``nn.Linear`` keeps its weight W as (out_features, in_features) and computes x · Wᵀ. On CPU with few input rows
(a decoding step has one row per sentence or beam) PyTorch's matrix product is far from its best in that form.
The same values come faster from two other forms:

- one row, layer not narrowing: x · Wt with Wt a cached contiguous (in, out) copy of the weight;
- 2 to 32 rows: (W · xᵀ)ᵀ, the weight in its own layout as the left operand (the result is made contiguous);
- more rows: x · Wt for layers that are not narrowing, the plain ``F.linear`` for narrowing ones.

Measured on this project's benchmark machine (2 threads, 20-30 different weights in turn so none stays in cache;
microseconds for x · Wt / (W · xᵀ)ᵀ / ``F.linear``):

==================  ============  ============  ============  ==============
(in -> out)         1 row         4 rows        32 rows       128 rows
==================  ============  ============  ============  ==============
256 -> 8000         360/1065/1034 1089/431/1734 1957/1879/2626 4669/7208/5257
256 -> 1024         65/133/131    173/58/198    292/285/341   669/683/705
256 -> 768          44/92/100     96/40/151     209/166/234   475/519/502
1024 -> 256         124/75/73     119/80/135    215/173/223   483/461/477
384 -> 1536 (BERT)  130/255/257   298/109/365   467/433/452   1046/1166/1573
==================  ============  ============  ============  ==============

:class:`TransposedWeight` holds the copy and makes it again whenever the weight changes (its storage or version
counter), so an optimiser step or ``load_state_dict`` never leaves it stale. With gradients on (training) or on
other devices the plain ``F.linear`` always runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHT_FIRST_ROWS = (2, 32)  # row counts (inclusive) where (W · xᵀ)ᵀ is the fastest form


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


def product_form(x: Tensor, in_features: int, out_features: int) -> str:
    """Which form computes ``x`` (..., in_features) times the weight fastest: "plain" (``F.linear``),
    "weight_first" ((W · xᵀ)ᵀ) or "transposed" (x · Wt, needs the cached copy)."""
    if x.device.type != "cpu" or torch.is_grad_enabled() or x.numel() == 0:
        return "plain"
    rows = x.numel() // in_features
    low, high = WEIGHT_FIRST_ROWS
    if low <= rows <= high:
        return "weight_first"
    return "transposed" if out_features >= in_features else "plain"


def fast_linear(x: Tensor, weight: Tensor, bias: Tensor | None, transposed: TransposedWeight | None) -> Tensor:
    """``F.linear(x, weight, bias)``: x (..., in), weight (out, in) -> (..., out), by the fastest form (see the
    module docstring). Without a ``transposed`` cache the "transposed" form falls back to the plain one."""
    out_features, in_features = weight.shape
    form = product_form(x, in_features, out_features)
    if form == "plain" or (form == "transposed" and transposed is None):
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, in_features)  # (rows, in)
    if form == "weight_first":
        out_t = torch.mm(weight, flat.t()) if bias is None else torch.addmm(bias[:, None], weight, flat.t())
        out = out_t.t().contiguous()  # (rows, out)
    else:
        assert transposed is not None
        weight_t = transposed(weight)  # (in, out)
        out = torch.mm(flat, weight_t) if bias is None else torch.addmm(bias, flat, weight_t)
    return out.view(*x.shape[:-1], out_features)


class Linear(nn.Linear):
    """``torch.nn.Linear`` (same parameters, same state dict) with the faster CPU inference of ``fast_linear``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.transposed = TransposedWeight()

    def forward(self, x: Tensor) -> Tensor:
        return fast_linear(x, self.weight, self.bias, self.transposed)

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` of the weight only (e.g. the query block of a fused Q/K/V layer).
        The row block of a row-major weight is itself contiguous, so every form but the cached copy applies."""
        return fast_linear(x, self.weight[rows], None if self.bias is None else self.bias[rows], None)
