"""Reading the documents to index: .txt/.md files (folders are searched for them) or JSON-lines records. Files
that are empty, binary or not UTF-8 are skipped with a warning that names them; nothing else is guessed."""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tformer.errors import DataError

log = logging.getLogger("tformer")

TEXT_SUFFIXES = (".txt", ".md", ".markdown")


@dataclass
class Document:
    source: str  # file path, or ``file.jsonl#id`` for a JSON-lines record
    text: str
    title: str = ""


def read_text_file(path: Path) -> str | None:
    """The file's text, or None (after a warning naming it) when it is empty, binary or not UTF-8."""
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        log.warning("tformer: skipped %s: binary file (contains NUL bytes)", path)
        return None
    try:
        text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as err:
        log.warning("tformer: skipped %s: not UTF-8 text (%s at byte %d)", path, err.reason, err.start)
        return None
    if not text.strip():
        log.warning("tformer: skipped %s: empty document", path)
        return None
    return text.replace("\r\n", "\n")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the .txt/.md files under folders (sorted); a missing path is an error."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"document not found: {p}")
    return out


def read_documents(paths: Iterable[str | Path], jsonl: bool = False) -> list[Document]:
    """Documents from files (one document each) or, with ``jsonl``, from JSON-lines files whose records carry
    ``text`` and optionally ``id`` (else the line number) and ``title``."""
    docs = []
    for path in expand_paths(paths):
        if not jsonl:
            text = read_text_file(path)
            if text is not None:
                docs.append(Document(str(path), text))
            continue
        text = read_text_file(path)
        for number, line in enumerate((text or "").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                body, key = record["text"], record.get("id", number)
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DataError(f"{path}:{number}: expected a JSON object with a 'text' field ({err})") from None
            if not isinstance(body, str) or not body.strip():
                log.warning("tformer: skipped %s:%d: empty document", path, number)
                continue
            docs.append(Document(f"{path}#{key}", body, str(record.get("title", ""))))
    sources = [d.source for d in docs]
    if len(set(sources)) != len(sources):
        twice = sorted({s for s in sources if sources.count(s) > 1})
        raise DataError(f"the same document source appears twice: {', '.join(twice[:3])}")
    return docs
