"""Open-book answers: spans ranked by their logits plus the weighted retrieval score of their passage."""

import pytest

from tformer.models.qa_pipeline import Span
from tformer.retrieval.ask import HYBRID_WEIGHT, ask
from tformer.retrieval.index import Hit


class Index:
    def __init__(self, scores):
        self.hits = [Hit(i, s, f"passage {i}", f"doc{i}.txt", "", 10 * i, 10 * i + 9) for i, s in enumerate(scores)]
        self.modes = []

    def search(self, question, passages, mode):
        self.modes.append(mode)
        return self.hits[:passages]


class Reader:
    """Spans with set logits: (context, score) pairs, returned best first as QuestionAnswerer.answer does."""

    def __init__(self, spans):
        self.spans = spans

    def answer(self, question, contexts, top_k=1):
        spans = [Span(f"answer {c}", score, 0, 6, c) for c, score in self.spans if c < len(contexts)]
        return sorted(spans, key=lambda s: -s.score)[:top_k]


def test_the_retrieval_score_can_outweigh_a_more_confident_span_in_a_worse_passage():
    index, reader = Index([1.9, 0.2]), Reader([(0, 10.0), (1, 12.0)])
    (plain,), _ = ask(index, reader, "q", retrieval_weight=0.0)
    assert plain.text == "answer 1" and plain.score == 12.0
    (weighted,), hits = ask(index, reader, "q")
    assert weighted.text == "answer 0" and weighted.score == pytest.approx(10.0 + HYBRID_WEIGHT * 1.9)
    assert weighted.source == "doc0.txt" and weighted.document_span == (0, 6) and len(hits) == 2


def test_answers_come_sorted_by_the_combined_score_and_other_modes_are_unweighted():
    index, reader = Index([0.1, 2.0, 1.0]), Reader([(0, 9.0), (1, -2.0), (2, 5.0)])
    answers, _ = ask(index, reader, "q", top_k=3)
    combined = [a.score for a in answers]
    # 5 + 6 x 1.0 beats -2 + 6 x 2.0 and 9 + 6 x 0.1
    assert combined == sorted(combined, reverse=True) and answers[0].text == "answer 2"
    answers, _ = ask(index, reader, "q", mode="bm25", top_k=3)
    assert [a.text for a in answers] == ["answer 0", "answer 2", "answer 1"] and index.modes[-1] == "bm25"


def test_an_empty_question_is_refused():
    with pytest.raises(ValueError, match="empty"):
        ask(Index([1.0]), Reader([]), "  ")
