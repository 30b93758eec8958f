"""Passages: whole sentences within the token budget, overlapping, spans that give back the document's text;
documents: empty, binary and non-UTF-8 files skipped with a warning naming them."""

import logging
import re

import pytest

from tformer.errors import DataError
from tformer.retrieval.documents import read_documents
from tformer.retrieval.passages import make_passages, split_sentences


def offsets(text):
    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


TEXT = ("Paris is the capital of France. It has many museums! Is the Louvre the largest?\n\n"
        "Rome is older. It was founded, says the legend, in 753 BC. The Tiber runs through it. ") * 3


def test_sentences_cover_the_text_without_their_whitespace():
    spans = split_sentences(TEXT)
    assert TEXT[spans[0][0]:spans[0][1]] == "Paris is the capital of France."
    assert "".join(TEXT[s:e] for s, e in spans).replace(" ", "") == TEXT.replace(" ", "").replace("\n", "")


@pytest.mark.parametrize("max_tokens, overlap", [(12, 1), (20, 2), (7, 0), (40, 1)])
def test_passages_fit_the_budget_overlap_and_cover_every_sentence(max_tokens, overlap):
    passages = make_passages(TEXT, offsets, max_tokens, overlap)
    for p in passages:
        assert TEXT[p.start:p.end] == p.text
        assert len(offsets(p.text)) <= max_tokens
    covered = set()
    for p in passages:
        covered |= set(range(p.start, p.end))
    assert all(s in covered for s, _ in split_sentences(TEXT))
    pairs = list(zip(passages, passages[1:]))
    assert all(a.start < b.start for a, b in pairs)  # always moves forward
    if overlap and max_tokens >= 20:
        assert any(b.start < a.end for a, b in pairs)


def test_a_sentence_longer_than_the_budget_is_cut_by_tokens():
    text = " ".join(f"w{i}" for i in range(50)) + "."
    passages = make_passages(text, offsets, 10, 1)
    assert len(passages) > 4 and all(len(offsets(p.text)) <= 10 for p in passages)
    assert passages[0].text.startswith("w0") and passages[-1].text.endswith(".")


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    (tmp_path / "good.md").write_text("# Title\n\nSome text.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    with caplog.at_level(logging.WARNING, logger="tformer"):
        docs = read_documents([tmp_path])
    assert [d.source for d in docs] == [str(tmp_path / "good.md")]
    for name, why in (("empty.txt", "empty"), ("binary.txt", "binary"), ("latin1.txt", "not UTF-8")):
        assert any(name in r.message and why in r.message for r in caplog.records), name


def test_jsonl_records_and_their_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "text": "One.", "title": "T"}\n\n{"text": "Two."}\n', encoding="utf-8")
    docs = read_documents([path], jsonl=True)
    assert [(d.source, d.text, d.title) for d in docs] == [(f"{path}#a", "One.", "T"), (f"{path}#3", "Two.", "")]
    path.write_text('{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d.jsonl:1"):
        read_documents([path], jsonl=True)
    with pytest.raises(DataError, match="not found"):
        read_documents([tmp_path / "missing.txt"])
