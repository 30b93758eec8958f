"""The official SQuAD v1.1 metrics: exact match and token F1 after normalising both answers (lower case, no
punctuation, no articles a/an/the, single spaces), each the maximum over a question's reference answers, averaged
over questions and given in percent (Rajpurkar et al., 2016)."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace (in that order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall, with tokens counted as a multiset."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(reference).split()
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def best_over_references(metric, prediction: str, references: Sequence[str]) -> float:
    """The metric against the closest reference answer."""
    return max(metric(prediction, ref) for ref in references)


def squad_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 in percent over every question of ``references`` (question id -> answer texts).

    A question without a prediction scores 0 (as the official script does, after saying so); predictions for
    unknown ids are ignored.
    """
    if not references:
        raise ValueError("no reference answers to score against")
    em = f1 = 0.0
    for qid, refs in references.items():
        if not refs:
            raise ValueError(f"question {qid!r} has no reference answer")
        if qid not in predictions:
            continue
        em += best_over_references(exact_match_score, predictions[qid], refs)
        f1 += best_over_references(f1_score, predictions[qid], refs)
    n = len(references)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "questions": n,
            "answered": sum(1 for qid in references if qid in predictions)}
