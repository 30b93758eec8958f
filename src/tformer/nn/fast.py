"""The one switch for tformer's fast CPU inference paths: the packed (oneDNN) and row-block product forms of
``tformer.nn.linear`` and the native decoding step of ``tformer.nn.native``.

Every fast path computes what the plain path does (exactly for the native step, up to float summation order for
the product forms); the plain path (``F.linear`` and the Python modules) is the reference the tests compare with.
Turn the fast paths off with the environment variable ``TFORMER_FAST=0``, or in code::

    tformer.nn.fast_paths(False)          # from now on
    with tformer.nn.fast_paths(False):    # inside the block only
        ...

The setting is one per process (not per thread), like the environment variable it starts from.
"""

from __future__ import annotations

import os
from types import TracebackType

ENV = "TFORMER_FAST"  # "0" turns every fast CPU path off

_enabled = os.environ.get(ENV, "1") != "0"


def fast_paths_enabled() -> bool:
    """Whether the fast CPU paths may be taken (each still checks that it applies)."""
    return _enabled


class fast_paths:  # noqa: N801 - used as a function, like torch.set_grad_enabled
    """Turn the fast CPU paths on or off: at once, and back to the previous setting when used as a context manager
    and its block ends.

    Args:
        enabled: False runs every product as ``F.linear`` and every decoding step in Python.
    """

    def __init__(self, enabled: bool) -> None:
        global _enabled
        self.previous = _enabled
        _enabled = bool(enabled)

    def __enter__(self) -> fast_paths:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        global _enabled
        _enabled = self.previous
