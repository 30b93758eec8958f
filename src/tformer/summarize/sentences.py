"""Splitting a document into sentences: the units an extractive summary is made of.

A rule-based splitter for English prose: a sentence ends at ``.``, ``!`` or ``?`` (closing quotes and brackets
included) followed by white space and a capital letter, digit or opening quote, unless the word before the
full stop is a known abbreviation (``e.g.``, ``et al.``, ``Fig.``) or a single initial. A blank line always ends
a sentence (a heading without a full stop stays its own sentence); single line breaks are wrapped text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Lower-cased words that end with a full stop without ending the sentence.
ABBREVIATIONS = frozenset(
    "al e.g i.e etc cf vs viz approx fig figs eq eqs sec secs tab ref refs no nos vol pp ch dr mr mrs ms prof "
    "st jr sr inc ltd co corp dept univ jan feb mar apr jun jul aug sep sept oct nov dec resp".split()
)
_PARAGRAPH = re.compile(r"\n\s*\n")
# A candidate end: terminal punctuation, optional closing quotes/brackets, white space, then a sentence start.
_BOUNDARY = re.compile(r"([.!?]+)([\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """``text`` -> its sentences in order, stripped, white space inside each collapsed to single spaces."""
    sentences = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _BOUNDARY.finditer(paragraph):
            if match.group(1) == "." and _is_abbreviation(paragraph[: match.start(1)]):
                continue
            sentences.append(paragraph[start : match.end(2)])
            start = match.end()
        if paragraph[start:].strip():
            sentences.append(paragraph[start:].strip())
    return [s for s in sentences if s]


def _is_abbreviation(before: str) -> bool:
    """Whether the word just before a full stop is an abbreviation or an initial ("J." in "J. Smith")."""
    word = before.rsplit(maxsplit=1)[-1] if before.strip() else ""
    word = word.lstrip("\"'(\u201c\u2018[").lower()
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def cut_to_fit(text: str, size: Callable[[str], int], limit: int) -> list[str]:
    """``text``, or, when ``size(text)`` (its tokens) exceeds ``limit``, its pieces that fit: cut in halves at word
    boundaries (at characters for a single over-long word), in order, nothing dropped. A sentence longer than a
    model's window is split this way rather than truncated."""
    if len(text) <= 1 or size(text) <= limit:
        return [text]
    words = text.split()
    if len(words) > 1:
        half = len(words) // 2
        return cut_to_fit(" ".join(words[:half]), size, limit) + cut_to_fit(" ".join(words[half:]), size, limit)
    half = len(text) // 2
    return cut_to_fit(text[:half], size, limit) + cut_to_fit(text[half:], size, limit)
