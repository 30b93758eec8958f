"""Open-book question answering: retrieve passages from an index, then read them with the span model and answer
with the best span, its passage and its source.

A span is ranked by its start + end logits plus ``HYBRID_WEIGHT`` times its passage's hybrid retrieval score (0-2):
the reader alone is as sure of a span in a wrong passage as in the right one (it was trained on the right
paragraph only), and the retrieval score says which passage is likely right. On the SQuAD dev articles the weight
6 was picked on two articles and lifted open-book F1 on the other two from 53.3 to 64.2 (docs/qa.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from tformer.models.qa_pipeline import QuestionAnswerer, Span
from tformer.retrieval.index import Hit, PassageIndex

HYBRID_WEIGHT = 6.0  # span logits + HYBRID_WEIGHT x the passage's hybrid score (min-max normalised, 0-2)


@dataclass
class Answer:
    text: str
    score: float  # the span's start + end logit, plus the weighted retrieval score of its passage
    source: str
    passage: Hit  # where it was found; ``start``/``end`` below are offsets in ``passage.text``
    start: int
    end: int

    @property
    def document_span(self) -> tuple[int, int]:
        """Character span of the answer in its source document."""
        return self.passage.start + self.start, self.passage.start + self.end


def ask(index: PassageIndex, reader: QuestionAnswerer, question: str, passages: int = 5, mode: str = "hybrid",
        top_k: int = 1, retrieval_weight: float | None = None) -> tuple[list[Answer], list[Hit]]:
    """The ``top_k`` best answers to ``question`` over the ``passages`` best retrieved passages, and those passages.

    Spans are ranked by their logits plus ``retrieval_weight`` times their passage's retrieval score (default:
    ``HYBRID_WEIGHT`` for the hybrid search, 0 for dense or BM25 scores, whose scales differ), so a confident span
    in a passage lower in the retrieval ranking can still win.
    """
    if not question.strip():
        raise ValueError("the question is empty")
    hits = index.search(question, passages, mode)
    if not hits:
        return [], []
    weight = (HYBRID_WEIGHT if mode == "hybrid" else 0.0) if retrieval_weight is None else retrieval_weight
    spans: list[Span] = reader.answer(question, [h.text for h in hits], top_k=max(top_k, 3) * len(hits))
    answers = [Answer(s.text, s.score + weight * hits[s.context].score, hits[s.context].source, hits[s.context],
                      s.start, s.end) for s in spans]
    return sorted(answers, key=lambda a: -a.score)[:top_k], hits
