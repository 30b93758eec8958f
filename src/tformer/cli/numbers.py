"""Argument types for numeric options: argparse checks the range while parsing, so a bad value stops the command
before anything is loaded, with a message that names the flag (``argument --batch-size: expected ...``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _parse(text: str, kind: type, what: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` up to ``high`` (no upper end when None)."""
    what = f"a whole number from {low} to {high}" if high is not None else f"a whole number of {low} or more"

    def parse(text: str) -> int:
        value = _parse(text, int, what)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type by this in its own messages
    return parse


def float_in(low: float, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """A finite number above ``low`` (or from ``low`` when ``low_open`` is False) up to ``high``."""
    lower = f"more than {low:g}" if low_open else f"{low:g} or more"
    what = f"a number {lower}" + (f" and at most {high:g}" if high is not None else "")

    def parse(text: str) -> float:
        value = float(_parse(text, float, what))
        if value < low or (low_open and value == low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive_int = int_in(1)  # counts of things that must exist: batch sizes, beams, steps, threads
non_negative_int = int_in(0)  # seeds, limits where 0 means "all"
port = int_in(0, 65535)  # 0 = any free port
positive_float = float_in(0.0, low_open=True)  # learning rates, time limits
non_negative_float = float_in(0.0)  # weight decay, clipping (0 = off), waits, length penalties
fraction = float_in(0.0, 1.0)  # ratios and weights between 0 and 1
NUMBER_TYPES = (positive_int, non_negative_int, port, positive_float, non_negative_float, fraction)
