"""per_class_metrics against hand counts, and consistency with macro_f1."""

import pytest

from tformer.evaluation.classification import macro_f1, per_class_metrics


def test_hand_counted_precision_recall_f1():
    gold = [1, 1, 1, 0, 0, 0, 0]
    predicted = [1, 1, 0, 1, 0, 0, 0]  # class 1: 2 hits, 3 predicted, 3 gold
    m = per_class_metrics(predicted, gold, 1)
    assert m == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    m0 = per_class_metrics(predicted, gold, 0)
    assert m0["precision"] == pytest.approx(3 / 4) and m0["recall"] == pytest.approx(3 / 4)
    assert (m["f1"] + m0["f1"]) / 2 == pytest.approx(macro_f1(predicted, gold, 2))


def test_a_class_never_predicted_scores_zero():
    assert per_class_metrics([0, 0], [1, 0], 1) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
