"""Classification metrics: accuracy, macro-averaged F1, and one class's precision, recall and F1."""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(predicted: Sequence[int], gold: Sequence[int]) -> float:
    """Fraction of predictions equal to the gold class."""
    _check(predicted, gold)
    return sum(p == g for p, g in zip(predicted, gold)) / len(gold)


def macro_f1(predicted: Sequence[int], gold: Sequence[int], num_classes: int) -> float:
    """Unweighted mean over classes of F1 = 2·precision·recall / (precision + recall); a class with no predictions
    and no gold examples is left out, one with either but no hits scores 0."""
    _check(predicted, gold)
    scores = []
    for c in range(num_classes):
        hits = sum(p == c and g == c for p, g in zip(predicted, gold))
        predicted_c, gold_c = sum(p == c for p in predicted), sum(g == c for g in gold)
        if predicted_c + gold_c == 0:
            continue
        scores.append(2 * hits / (predicted_c + gold_c))  # = 2PR / (P + R)
    return sum(scores) / len(scores) if scores else 0.0


def per_class_metrics(predicted: Sequence[int], gold: Sequence[int], label: int) -> dict[str, float]:
    """Precision, recall and F1 of one class (e.g. ``spam``): 0 where the denominator is empty."""
    _check(predicted, gold)
    hits = sum(p == label and g == label for p, g in zip(predicted, gold))
    predicted_c, gold_c = sum(p == label for p in predicted), sum(g == label for g in gold)
    precision = hits / predicted_c if predicted_c else 0.0
    recall = hits / gold_c if gold_c else 0.0
    f1 = 2 * hits / (predicted_c + gold_c) if predicted_c + gold_c else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def classification_metrics(predicted: Sequence[int], gold: Sequence[int], num_classes: int) -> dict[str, float]:
    return {"accuracy": accuracy(predicted, gold), "macro_f1": macro_f1(predicted, gold, num_classes)}


def _check(predicted: Sequence[int], gold: Sequence[int]) -> None:
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold labels")
    if not gold:
        raise ValueError("no examples to score")
