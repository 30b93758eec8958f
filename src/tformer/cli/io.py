"""Reading input lines for the CLI: files or stdin, UTF-8, with errors that name the line."""

from __future__ import annotations

import sys
from pathlib import Path

from tformer.data.corpus import decode_lines
from tformer.errors import DataError


def read_input_lines(path: str | None) -> list[str]:
    """Lines of ``path``, or of stdin when ``path`` is None or '-'."""
    if path in (None, "-"):
        return decode_lines(sys.stdin.buffer.read(), "<stdin>")
    file = Path(path)
    if not file.is_file():
        raise DataError(f"input file not found: {file}")
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {file}: {err.strerror}") from None
    if not raw:
        raise DataError(f"input file is empty: {file}")
    return decode_lines(raw, str(file))


def input_texts(arguments: list[str], path: str | None) -> list[str]:
    """The texts given as arguments (a byte-order mark a shell or editor left at the start dropped), else the lines
    of ``path`` or stdin."""
    return [text.removeprefix("\ufeff") for text in arguments] or read_input_lines(path)
