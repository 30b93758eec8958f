"""Readers for text classification data: ``LABEL TEXT`` lines (SST-2) and CSV/TSV tables with a header.

Every example remembers its file and line, so a malformed line or a label outside the label set is reported as
``file:line``. Label names are kept as written (or renamed by a dataset's ``label_names``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from tformer.data.corpus import data_dir, read_lines
from tformer.errors import DataError

TEXT_COLUMNS = ("text", "sentence")
LABEL_COLUMN = "label"


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[str]  # label names as strings
    lines: list[int]  # line number of each example in ``source``
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, index: int) -> str:
        return f"{self.source}:{self.lines[index]}"


@dataclass
class DatasetSpec:
    """Where a dataset's splits live, and optional readable names for its raw labels."""

    train: Path
    dev: Path
    label_names: dict[str, str] = field(default_factory=dict)


SST2_NAMES = {"0": "negative", "1": "positive"}
# Short names for the copies in the data folder: sentence-level SST-2, and GLUE's phrase-level SST-2.
PRESETS = {
    "sst2": ("sst2/train.txt", "sst2/dev.txt", SST2_NAMES),
    "glue": ("sst2-glue/train.tsv.gz", "sst2-glue/dev.tsv", SST2_NAMES),
    "sst2-glue": ("sst2-glue/train.tsv.gz", "sst2-glue/dev.tsv", SST2_NAMES),
}


def dataset_spec(name: str, root: str | Path | None = None) -> DatasetSpec:
    """A preset (``sst2``, ``glue``) under the data folder, or a folder holding ``train.*`` and ``dev.*`` files."""
    if name in PRESETS:
        train, dev, names = PRESETS[name]
        base = data_dir(root)
        return DatasetSpec(base / train, base / dev, dict(names))
    folder = Path(name)
    if not folder.is_dir():
        raise DataError(f"dataset {name!r} is neither a preset ({', '.join(PRESETS)}) nor a folder")
    splits = {}
    for split in ("train", "dev"):
        found = sorted(p for p in folder.glob(f"{split}.*") if p.is_file())
        if not found:
            present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
            raise DataError(f"{folder}: no {split}.txt/.tsv/.csv file (found: {present})")
        splits[split] = found[0]
    return DatasetSpec(splits["train"], splits["dev"])


def load_dataset(spec: DatasetSpec) -> tuple[LabelledTexts, LabelledTexts, list[str]]:
    """Both splits and the label set (from the training split, renamed by ``spec.label_names``).

    Labels may be any strings (``ham``/``spam``); they become the model's label names. A training file with one
    label only, or a development label the training split never has, raises ``DataError`` naming the file (and
    the line).
    """
    train, dev = read_labelled_texts(spec.train), read_labelled_texts(spec.dev)
    if not len(train):
        raise DataError(f"{train.source}: no examples")
    raw = label_set(train.labels)
    if len(raw) < 2:
        raise DataError(f"{train.source}: every example has the label {raw[0]!r}; a classifier needs at least two "
                        "labels in the training file")
    label_ids(dev, raw)
    for data in (train, dev):
        data.labels = [spec.label_names.get(label, label) for label in data.labels]
    return train, dev, [spec.label_names.get(label, label) for label in raw]


def read_labelled_texts(path: str | Path) -> LabelledTexts:
    """``.txt`` files hold ``LABEL TEXT`` lines; ``.tsv`` and ``.csv`` files a header row (``.gz`` allowed)."""
    path = Path(path)
    suffixes = [s for s in path.suffixes if s != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind in (".tsv", ".csv"):
        return read_table(path, delimiter="\t" if kind == ".tsv" else ",")
    return read_label_text_lines(path)


def read_label_text_lines(path: str | Path) -> LabelledTexts:
    """Lines ``LABEL TEXT``: the label, one space (or tab), the text."""
    data = LabelledTexts([], [], [], str(path))
    for number, line in enumerate(read_lines(path), start=1):
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path}:{number}: expected 'LABEL TEXT', got {line[:80]!r}")
        data.labels.append(parts[0])
        data.texts.append(parts[1].strip())
        data.lines.append(number)
    return data


def read_table(path: str | Path, delimiter: str) -> LabelledTexts:
    """A header naming a ``text`` or ``sentence`` column and a ``label`` column, then one example per row."""
    lines = read_lines(path)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(iter(lines), delimiter=delimiter, quoting=quoting)
    header = [h.strip().lower() for h in next(reader, [])]
    text_col = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    if text_col is None or LABEL_COLUMN not in header:
        raise DataError(f"{path}:1: the header needs a 'text' or 'sentence' column and a 'label' column, got {header}")
    label_col = header.index(LABEL_COLUMN)
    data = LabelledTexts([], [], [], str(path))
    for row in reader:
        number = reader.line_num
        if len(row) != len(header):
            raise DataError(f"{path}:{number}: expected {len(header)} fields like the header, got {len(row)}")
        text, label = row[text_col].strip(), row[label_col].strip()
        if not text or not label:
            raise DataError(f"{path}:{number}: empty {'text' if not text else 'label'}")
        data.texts.append(text)
        data.labels.append(label)
        data.lines.append(number)
    return data


def label_set(labels: list[str]) -> list[str]:
    """Distinct labels in a stable order: numerically when all are integers, else alphabetically."""
    distinct = set(labels)
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def label_ids(data: LabelledTexts, labels: list[str]) -> list[int]:
    """Each example's class id; a label outside ``labels`` raises ``DataError`` naming file and line."""
    index = {name: i for i, name in enumerate(labels)}
    ids = []
    for i, label in enumerate(data.labels):
        if label not in index:
            raise DataError(f"{data.where(i)}: label {label!r} is not one of the labels {labels}")
        ids.append(index[label])
    return ids
