"""Readers for parallel text: aligned line files (Multi30k) and tab-separated pairs (Tatoeba)."""

from __future__ import annotations

import codecs
import gzip
import os
import random
from dataclasses import dataclass
from pathlib import Path

from tformer.errors import DataError

# ``../shared/data`` beside the project root (src/tformer/data/corpus.py -> project root is parents[3]).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def data_dir(override: str | Path | None = None) -> Path:
    """Where the corpora live: an explicit setting, else ``$TFORMER_DATA``, else ``../shared/data``."""
    if override:
        return Path(override)
    env = os.environ.get("TFORMER_DATA")
    return Path(env) if env else DEFAULT_DATA_DIR


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 text file (``.gz`` is decompressed), without line endings.

    Invalid UTF-8 raises ``DataError`` naming the file and line number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # unreadable, or a corrupt/truncated .gz
        raise DataError(f"cannot read {path}: {err}") from None
    return decode_lines(raw, str(path))


def decode_lines(raw: bytes, source: str) -> list[str]:
    """Split bytes into lines (a final newline adds no empty line; CRLF accepted; a UTF-8 byte-order mark at the
    start, as some Windows editors write, is dropped rather than becoming part of the first line).

    Invalid UTF-8 raises ``DataError`` naming ``source`` and the line number.
    """
    parts = raw.removeprefix(codecs.BOM_UTF8).split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    lines = []
    for number, part in enumerate(parts, start=1):
        try:
            lines.append(part.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise DataError(f"{source}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    return lines


@dataclass
class ParallelCorpus:
    src: list[str]
    tgt: list[str]
    name: str = ""

    def __len__(self) -> int:
        return len(self.src)


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> ParallelCorpus:
    """Two aligned files, one sentence per line. Differing line counts are refused."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    for path, lines in ((src_path, src), (tgt_path, tgt)):
        if not lines:
            raise DataError(f"file is empty: {path}")
    if len(src) != len(tgt):
        raise DataError(f"line counts differ: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}")
    return ParallelCorpus(src, tgt, Path(src_path).name)


def multi30k(split: str, root: str | Path | None = None, src_lang: str = "de", tgt_lang: str = "en") -> ParallelCorpus:
    """Multi30k task 1: ``train``, ``val`` or ``test_2016_flickr``."""
    folder = data_dir(root) / "multi30k"
    corpus = read_parallel(folder / f"{split}.{src_lang}.gz", folder / f"{split}.{tgt_lang}.gz")
    corpus.name = f"multi30k/{split}"
    return corpus


def read_tsv_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Lines ``English<TAB>German``. A line without exactly two non-empty fields raises ``DataError``."""
    pairs = []
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataError(f"{path}:{number}: expected two non-empty tab-separated fields, got {line[:80]!r}")
        pairs.append((fields[0], fields[1]))
    return pairs


TATOEBA_SPLIT_SEED = 20180513


def split_by_key(
    pairs: list[tuple[str, str]], n_valid: int, n_test: int, seed: int = TATOEBA_SPLIT_SEED
) -> dict[str, list[int]]:
    """Reproducible split into train/valid/test pair indices, keeping pairs that share a key (the first field,
    the English sentence) on one side. Held-out sides take whole groups until they hold at least n pairs."""
    groups: dict[str, list[int]] = {}
    for index, (key, _) in enumerate(pairs):
        groups.setdefault(key, []).append(index)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    split: dict[str, list[int]] = {"valid": [], "test": [], "train": []}
    for key in keys:
        side = "valid" if len(split["valid"]) < n_valid else "test" if len(split["test"]) < n_test else "train"
        split[side].extend(groups[key])
    return {name: sorted(ids) for name, ids in split.items()}


def tatoeba(
    split: str, root: str | Path | None = None, n_valid: int = 2000, n_test: int = 2000
) -> ParallelCorpus:
    """Tatoeba German -> English, split by ``split_by_key`` with a fixed seed: ``train``, ``valid`` or ``test``."""
    pairs = read_tsv_pairs(data_dir(root) / "tatoeba-deu-eng" / "deu.txt.gz")
    ids = split_by_key(pairs, n_valid, n_test)[split]
    return ParallelCorpus([pairs[i][1] for i in ids], [pairs[i][0] for i in ids], f"tatoeba/{split}")
