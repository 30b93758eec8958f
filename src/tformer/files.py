"""The files of model folders and training runs: JSON read with errors that name the file and the problem, and
writes that are atomic (a temporary file beside the target, renamed into place), so a kill or a full disk never
leaves a half-written or empty file where a complete one is expected."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tformer.errors import ModelFolderError

CHECKSUMS = "checksums.json"  # {file name: SHA-256 hex digest} of the files of a model or checkpoint folder


def read_json(path: str | Path, kind: type = dict) -> Any:
    """The JSON value in ``path``, which must be of type ``kind`` (default: an object).

    Raises ``ModelFolderError`` naming the file and the problem in one line: unreadable, not UTF-8, not valid JSON
    (with line and column), or a value of the wrong kind.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ModelFolderError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ModelFolderError(f"{path}: cannot read it ({err.strerror or err})") from None
    if not text.strip():
        raise ModelFolderError(f"{path}: the file is empty (expected JSON)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelFolderError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(value, kind):
        raise ModelFolderError(f"{path}: expected {JSON_KINDS.get(kind, kind.__name__)} in it, got "
                               f"{JSON_KINDS.get(type(value), type(value).__name__)}")
    return value


JSON_KINDS = {dict: "a JSON object", list: "a JSON array", str: "a string", int: "a number", float: "a number",
              bool: "true or false", type(None): "null"}


def staging_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (hidden, same folder, so the rename is atomic).
    The suffix stays last, for writers that pick the format by it (``curves.png`` -> ``.curves.tmp-PID.png``)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """``with atomic_output(p) as tmp:`` write the file at ``tmp`` (any way you like); on success it replaces ``p``
    in one rename, on failure it is removed and ``p`` is untouched. A full disk is reported naming ``p``."""
    path = Path(path)
    tmp = staging_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"no space left on the device while writing {path}") from None
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def set_usual_permissions(folder: str | Path) -> None:
    """Give ``folder`` and its files the modes a plain ``mkdir`` and ``open`` would (0755/0644 under the usual
    umask): temporary folders and files are created private (0700/0600), which a shared model must not stay."""
    umask = os.umask(0)
    os.umask(umask)
    folder = Path(folder)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


# ------------------------------------------------------------------------------------------- checksums


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: str | Path, names: list[str] | None = None) -> None:
    """Write ``checksums.json`` for ``names`` (default: every file in ``folder`` but the checksums file itself)."""
    folder = Path(folder)
    names = names if names is not None else [p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS]
    write_json_atomic(folder / CHECKSUMS, {name: sha256_file(folder / name) for name in sorted(names)})


def verify_checksums(folder: str | Path) -> bool:
    """Check every file that ``folder``'s ``checksums.json`` lists; False when there is no such file.

    Raises ``ModelFolderError`` naming the first file that is missing or whose SHA-256 differs (flipped bytes,
    truncation), or naming ``checksums.json`` itself when it is damaged.
    """
    folder = Path(folder)
    if not (folder / CHECKSUMS).is_file():
        return False
    listed = read_json(folder / CHECKSUMS)
    if not all(isinstance(k, str) and isinstance(v, str) and "/" not in k for k, v in listed.items()):
        raise ModelFolderError(f"{folder / CHECKSUMS}: expected {{file name: SHA-256}} entries")
    for name, digest in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            raise ModelFolderError(f"{path}: missing (listed in {CHECKSUMS})")
        if sha256_file(path) != digest:
            raise ModelFolderError(f"{path}: corrupted (checksum mismatch with {CHECKSUMS}): restore the file, or "
                                   f"train or download the model again (if you replaced it on purpose, delete "
                                   f"{CHECKSUMS})")
    return True
