"""The native extension's kernels that the Python modules call too, so that they compute what the C++ decoding
step computes: the row kernel of few-row products (``tformer.nn.linear``'s "rows" form), one-query attention
(``tformer.nn.attention``) and beam search's choice of continuations (``tformer.decoding.search.top_of_sums``).

``tformer.nn.native`` builds and loads the extension and registers it here (:func:`use`); until then (a fresh
install while the extension builds in the background, a machine without a compiler, ``TFORMER_NATIVE=0``) the
modules take PyTorch's own kernels, which give the same values up to float rounding. This module imports nothing
from the rest of the package, so the modules can ask it without importing the extension's builder.
"""

from __future__ import annotations

_ops: object | None = None  # the loaded extension, or None


def use(ops: object | None) -> None:
    """Take the kernels of ``ops`` (tformer.nn.native's loaded extension), or with None, stop taking any."""
    global _ops
    _ops = ops if ops is not None and hasattr(ops, "row_product") else None


def loaded() -> object | None:
    """The registered extension, or None: the modules then take PyTorch's kernels."""
    return _ops
