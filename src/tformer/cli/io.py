"""Reading input lines for the CLI: files or stdin, UTF-8, with errors that name the line."""

from __future__ import annotations

import sys
from pathlib import Path

from tformer.errors import DataError


def decode_lines(raw: bytes, source: str) -> list[str]:
    """Split bytes into lines (a final newline does not add an empty line); invalid UTF-8 names the line."""
    parts = raw.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    lines = []
    for number, part in enumerate(parts, start=1):
        try:
            lines.append(part.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise DataError(f"{source}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    return lines


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
