"""SQuAD-format question answering data: reading the JSON, and cutting (question, context) pairs into the
overlapping token windows a fixed-length encoder sees, with each token's character span in the context.

A window is ``[CLS] question [SEP] context-piece [SEP]``; consecutive context pieces start ``doc_stride`` tokens
apart, so a long context is covered with overlap and an answer near a window's edge is whole in the next one.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from tformer.data.corpus import data_dir
from tformer.errors import DataError
from tformer.text.pretrained import Tokenizer

SQUAD_DIR = "squad-v1.1"


@dataclass
class SquadExample:
    id: str
    question: str
    context: str
    answers: list[str] = field(default_factory=list)  # reference answer texts (several for dev questions)
    answer_starts: list[int] = field(default_factory=list)  # character offset of each in ``context``
    title: str = ""
    paragraph: int = 0  # index of the paragraph in the file (questions on one paragraph share it)


@dataclass
class Window:
    """One encoder input for one (question, context) pair, and how its tokens map back to the context."""

    example: int  # index of the example (question) it belongs to
    input_ids: list[int]  # (seq,)
    token_type_ids: list[int]  # (seq,): 0 question, 1 context
    offsets: list[tuple[int, int] | None]  # (seq,): character span in the context; None outside the context
    max_context: list[bool]  # (seq,): this window gives the token its most context on both sides
    start_position: int = 0  # answer's first/last token, 0 ([CLS]) when the answer is not inside this window
    end_position: int = 0


def squad_path(split: str, root: str | Path | None = None) -> Path:
    """``train`` or ``dev`` of the shared SQuAD v1.1 copy (under ``$TFORMER_DATA`` or ``../shared/data``)."""
    return data_dir(root) / SQUAD_DIR / f"{split}.json.gz"


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"SQuAD file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise DataError(f"{path}: not a SQuAD JSON file ({err})") from None


def read_squad(path: str | Path) -> list[SquadExample]:
    """Every question of a SQuAD v1.1 JSON file (``.json`` or ``.json.gz``), in file order."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{path}: expected {{'data': [articles]}} (SQuAD format)")
    examples, paragraph = [], 0
    for article in doc["data"]:
        for para in article.get("paragraphs", []):
            context = para["context"]
            for qa in para.get("qas", []):
                answers = qa.get("answers", [])
                for a in answers:
                    if context[a["answer_start"] : a["answer_start"] + len(a["text"])] != a["text"]:
                        raise DataError(f"{path}: question {qa['id']}: answer {a['text']!r} is not at "
                                        f"character {a['answer_start']} of its context")
                examples.append(SquadExample(
                    qa["id"], qa["question"], context, [a["text"] for a in answers],
                    [a["answer_start"] for a in answers], article.get("title", ""), paragraph,
                ))
            paragraph += 1
    return examples


def read_paragraphs(path: str | Path) -> list[tuple[str, str]]:
    """(title, context) of every paragraph of a SQuAD file, in order (``SquadExample.paragraph`` indexes it)."""
    doc = _read_json(Path(path))
    return [(a.get("title", ""), p["context"]) for a in doc["data"] for p in a.get("paragraphs", [])]


def answer_token_span(offsets: list[tuple[int, int]], start_char: int, end_char: int) -> tuple[int, int]:
    """First and last token (indices into ``offsets``) covering characters [start_char, end_char)."""
    first = max((i for i, (s, _) in enumerate(offsets) if s <= start_char), default=0)
    last = min((i for i, (_, e) in enumerate(offsets) if e >= end_char), default=len(offsets) - 1)
    return first, max(first, last)


def make_windows(
    tokenizer: Tokenizer,
    question: str,
    context: str,
    max_length: int = 384,
    doc_stride: int = 128,
    max_question_length: int = 64,
    answer: tuple[int, str] | None = None,
    example: int = 0,
    truncate_question: bool = True,
) -> list[Window]:
    """Cut one (question, context) pair into windows of at most ``max_length`` tokens.

    Args:
        max_length: tokens per window, special tokens included.
        doc_stride: context tokens between the starts of consecutive windows (less than the context room, so
            windows overlap).
        max_question_length: question tokens kept (longer questions are cut, or with ``truncate_question=False``
            refused with a ``ValueError``).
        answer: (start character, text) of the answer in ``context``, to label each window's start/end position.
    """
    cls_id, sep_id = tokenizer.special_id("cls_token"), tokenizer.special_id("sep_token")
    q_ids, _ = tokenizer.encode_with_offsets(question)
    if not q_ids:
        raise ValueError("the question is empty")
    if len(q_ids) > max_question_length:
        if not truncate_question:
            raise ValueError(f"the question is {len(q_ids)} tokens long; the model's window of {max_length} tokens "
                             f"takes questions of at most {max_question_length} tokens")
        q_ids = q_ids[:max_question_length]
    c_ids, c_offsets = tokenizer.encode_with_offsets(context)
    room = max_length - len(q_ids) - 3  # [CLS] q [SEP] ... [SEP]
    if room < 1:
        raise ValueError(f"max_length {max_length} leaves no room for the context after a {len(q_ids)}-token question")
    stride = max(1, min(doc_stride, room))
    starts = list(range(0, max(len(c_ids) - room, 0) + 1, stride))
    if starts[-1] + room < len(c_ids):
        starts.append(len(c_ids) - room)
    gold = None
    if answer is not None and c_ids:
        gold = answer_token_span(c_offsets, answer[0], answer[0] + len(answer[1]))
    windows = []
    for start in starts:
        end = min(start + room, len(c_ids))  # context tokens [start, end)
        head = [cls_id, *q_ids, sep_id]
        ids = head + c_ids[start:end] + [sep_id]
        offsets: list[tuple[int, int] | None] = [None] * len(head) + list(c_offsets[start:end]) + [None]
        best = [_is_max_context(starts, room, len(c_ids), start, p) for p in range(start, end)]
        window = Window(example, ids, [0] * len(head) + [1] * (end - start + 1), offsets,
                        [False] * len(head) + best + [False])
        if gold is not None and start <= gold[0] and gold[1] < end:
            window.start_position = len(head) + gold[0] - start
            window.end_position = len(head) + gold[1] - start
        windows.append(window)
    return windows


def _is_max_context(starts: list[int], room: int, n: int, start: int, p: int) -> bool:
    """Whether the window starting at ``start`` gives context token ``p`` the most context (the smaller of its
    left and right neighbours, slightly favouring longer windows), as the original BERT code decides."""
    def score(s: int) -> float:
        e = min(s + room, n)
        return min(p - s, e - 1 - p) + 0.01 * (e - s)

    holders = [s for s in starts if s <= p < min(s + room, n)]
    return max(holders, key=score) == start
