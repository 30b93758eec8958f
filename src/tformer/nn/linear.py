"""A linear layer whose CPU inference picks, by the number of input rows, the fastest way to run the product.

``nn.Linear`` keeps its weight W as (out_features, in_features) and computes x · Wᵀ. On CPU with few input rows
(a decoding step has one row per sentence or beam) PyTorch's matrix product is far from its best in that form.
The same values come faster from two other forms:

- one row, layer not narrowing: x · Wt, with Wt a cached contiguous copy of the weight whose output columns are
  cut into one block per thread, laid out (blocks, in_features, out_features / blocks); one batched product
  (``torch.baddbmm``) over the blocks spreads the row over the threads, where a plain product uses one core;
- 2 to 32 rows: (W · xᵀ)ᵀ, the weight in its own layout as the left operand (the result is made contiguous);
- 33 to 128 rows, layer not narrowing: x · Wt again; otherwise the plain ``F.linear``.

Measured on this project's benchmark machine (2 threads; 6-30 different weights in turn, so that none stays in
cache, as in a decoding step), microseconds; ``python -m benchmarks.probes forms`` measures the chosen form against
``F.linear`` again (the shared machine moves such numbers by tens of percent between runs):

- 256 -> 8000 (output projection): 1 row: ``F.linear`` 1061, x · Wt 399, blocked x · Wt 257; 4 rows: ``F.linear``
  1734, (W · xᵀ)ᵀ 424; 32 rows: ``F.linear`` 2626, (W · xᵀ)ᵀ 1879; 128 rows: ``F.linear`` 5531, blocked x · Wt 3280.
- 256 -> 1024: 1 row 126 / 62 / 37; 4 rows 198 / 58; 128 rows 558 / 480.
- 256 -> 768 (fused Q, K, V): 1 row 100 / 50 / 35; 4 rows 151 / 41; 128 rows 502 / 475.
- 1024 -> 256 (narrowing): 1 row ``F.linear`` 89, x · Wt 145; 4 rows 135 / 72; 128 rows 481 / 454.

Blocks pay only at one row: for 2-32 rows, blocked (W · xᵀ)ᵀ was faster alone but slower inside a real beam
search (4 rows per step), so it is not used. In whole decoding runs, interleaved: greedy at batch 1 2.07 s ->
1.84 s for 48 test sentences (blocked one-row products), beam 4 at batch 1 5.1 -> 2.8 ms per token ((W · xᵀ)ᵀ).

Every form computes the same values (up to float rounding order). :class:`TransposedWeight` makes its copy again
whenever the weight changes (its storage or version counter) or the thread count does, so an optimiser step or
``load_state_dict`` never leaves it stale. With gradients on (training) or on other devices the plain ``F.linear``
always runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHT_FIRST_ROWS = (2, 32)  # row counts (inclusive) where (W · xᵀ)ᵀ is the fastest form
TRANSPOSED_MAX_ROWS = 128  # above this many rows the plain product is as fast as any


class TransposedWeight:
    """A contiguous (blocks, in_features, out_features / blocks) copy of a (out_features, in_features) weight."""

    def __init__(self) -> None:
        # ((data_ptr, version, blocks) it was made for, the copy): one attribute, replaced whole, so a reader in
        # another thread never pairs a key with the wrong copy.
        self._made: tuple[tuple[int, int, int], Tensor] | None = None

    def __call__(self, weight: Tensor, blocks: int = 1) -> Tensor:
        key = (weight.data_ptr(), weight._version, blocks)
        made = self._made
        if made is None or made[0] != key:
            out_features, in_features = weight.shape
            copy = weight.detach().t().reshape(in_features, blocks, out_features // blocks).transpose(0, 1)
            made = self._made = (key, copy.contiguous())
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
    if out_features >= in_features and rows <= TRANSPOSED_MAX_ROWS:
        return "transposed"
    return "plain"


def fast_linear(x: Tensor, weight: Tensor, bias: Tensor | None, transposed: TransposedWeight | None) -> Tensor:
    """``F.linear(x, weight, bias)``: x (..., in), weight (out, in) -> (..., out), by the fastest form (see the
    module docstring). Without a ``transposed`` cache, or for a weight made under ``torch.inference_mode``, the
    "transposed" form falls back to the plain one."""
    out_features, in_features = weight.shape
    form = product_form(x, in_features, out_features)
    if form == "plain" or (form == "transposed" and (transposed is None or weight.is_inference())):
        # A weight made under inference_mode has no version counter, so a cached copy could not see it change.
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, in_features)  # (rows, in)
    if form == "weight_first":
        out_t = torch.mm(weight, flat.t()) if bias is None else torch.addmm(bias[:, None], weight, flat.t())
        return out_t.t().contiguous().view(*x.shape[:-1], out_features)  # out_t: (out, rows)
    assert transposed is not None
    blocks = torch.get_num_threads()
    if out_features % blocks:
        blocks = 1
    width = out_features // blocks  # output columns per block
    w_t = transposed(weight, blocks)  # (blocks, in, width)
    x_b = flat.expand(blocks, *flat.shape)  # (blocks, rows, in), a view
    if bias is None:
        out = torch.bmm(x_b, w_t)
    else:
        out = torch.baddbmm(bias.view(blocks, 1, width), x_b, w_t)  # (blocks, rows, width)
    return out.transpose(0, 1).reshape(*x.shape[:-1], out_features)


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
