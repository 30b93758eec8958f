"""Open-book question answering: retrieve passages from an index, then read them with the span model and answer
with the best span, its passage and its source."""

from __future__ import annotations

from dataclasses import dataclass

from tformer.models.qa_pipeline import QuestionAnswerer, Span
from tformer.retrieval.index import Hit, PassageIndex


@dataclass
class Answer:
    text: str
    score: float  # the span's start + end logit
    source: str
    passage: Hit  # where it was found; ``start``/``end`` below are offsets in ``passage.text``
    start: int
    end: int

    @property
    def document_span(self) -> tuple[int, int]:
        """Character span of the answer in its source document."""
        return self.passage.start + self.start, self.passage.start + self.end


def ask(index: PassageIndex, reader: QuestionAnswerer, question: str, passages: int = 5, mode: str = "hybrid",
        top_k: int = 1) -> tuple[list[Answer], list[Hit]]:
    """The ``top_k`` best answers to ``question`` over the ``passages`` best retrieved passages, and those passages.

    The reader compares spans across passages by their logits, so a passage lower in the retrieval ranking can
    still give the answer (re-ranking by the reader is what lifts retrieval recall@1 in docs/qa.md).
    """
    if not question.strip():
        raise ValueError("the question is empty")
    hits = index.search(question, passages, mode)
    if not hits:
        return [], []
    spans: list[Span] = reader.answer(question, [h.text for h in hits], top_k=top_k)
    answers = [Answer(s.text, s.score, hits[s.context].source, hits[s.context], s.start, s.end) for s in spans]
    return answers, hits
