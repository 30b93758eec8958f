"""What every text-taking entry point accepts: one string (one result back) or a sequence of strings (a list)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def text_batch(texts: Any, name: str = "texts") -> tuple[list[str], bool]:
    """``texts`` as a list of strings and whether a single string was given (the caller then returns one result).

    A string is one text, never a sequence of characters; a list or tuple must hold only strings. Anything else
    (bytes, a number, None, a dict) is a ``TypeError`` naming the argument and what was given.
    """
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, bytes | bytearray) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a string or a list of strings, got {type(texts).__name__}")
    wrong = [t for t in texts if not isinstance(t, str)]
    if wrong:
        raise TypeError(f"{name} must be a string or a list of strings, got a {type(texts).__name__} holding "
                        f"{type(wrong[0]).__name__} {wrong[0]!r:.40}")
    return list(texts), False
