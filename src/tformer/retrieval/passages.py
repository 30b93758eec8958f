"""Cutting a document into overlapping passages: whole sentences up to a token budget, the last sentences of one
passage repeated at the start of the next, and a sentence longer than the budget cut by tokens. Each passage keeps
its character span in the document."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace, or at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n")


@dataclass
class Passage:
    text: str
    start: int  # character span in the document
    end: int


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (whitespace between them excluded)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.start()].strip():
            spans.append(_strip(text, start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append(_strip(text, start, len(text)))
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def make_passages(
    text: str,
    token_offsets: Callable[[str], list[tuple[int, int]]],
    max_tokens: int = 200,
    overlap: int = 1,
) -> list[Passage]:
    """Overlapping passages of whole sentences of at most ``max_tokens`` tokens each.

    Args:
        token_offsets: the tokenizer, as a function from text to each token's (start, end) characters.
        max_tokens: token budget of a passage (the encoder's window, less its special tokens).
        overlap: sentences each passage repeats from the end of the previous one (fewer if they do not fit).
    """
    if max_tokens < 1 or overlap < 0:
        raise ValueError(f"max_tokens must be >= 1 and overlap >= 0, got {max_tokens} and {overlap}")
    pieces = []  # (start, end, tokens) of sentences, long sentences cut into token windows
    for start, end in split_sentences(text):
        offsets = token_offsets(text[start:end])
        if len(offsets) <= max_tokens:
            pieces.append((start, end, max(1, len(offsets))))
            continue
        step = max(1, max_tokens - max_tokens // 4)  # long sentence: token windows overlapping by a quarter
        for first in range(0, len(offsets), step):
            chunk = offsets[first : first + max_tokens]
            pieces.append((start + chunk[0][0], start + chunk[-1][1], len(chunk)))
            if first + max_tokens >= len(offsets):
                break
    passages, i = [], 0
    while i < len(pieces):
        j, tokens = i, 0
        while j < len(pieces) and (j == i or tokens + pieces[j][2] <= max_tokens):
            tokens += pieces[j][2]
            j += 1
        start, end = pieces[i][0], pieces[j - 1][1]
        passages.append(Passage(text[start:end], start, end))
        if j >= len(pieces):
            break
        back = 0  # repeat up to ``overlap`` sentences, keeping at least one new one
        while back < overlap and j - back - 1 > i and sum(p[2] for p in pieces[j - back - 1 : j]) < max_tokens // 2:
            back += 1
        i = j - back
    return passages
