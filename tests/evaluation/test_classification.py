"""Accuracy and macro-F1 against hand-computed values."""

import pytest

from tformer.evaluation.classification import accuracy, classification_metrics, macro_f1


def test_accuracy_and_macro_f1_by_hand():
    gold = [0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 2, 2]
    assert accuracy(predicted, gold) == pytest.approx(4 / 6)
    # class 0: P=1, R=2/3 -> F1 0.8; class 1: P=1/2, R=1/2 -> 0.5; class 2: P=1/2, R=1 -> 2/3
    assert macro_f1(predicted, gold, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_macro_f1_counts_a_never_predicted_class_as_zero():
    assert macro_f1([0, 0, 0, 0], [0, 0, 1, 1], 2) == pytest.approx((2 / 3 + 0) / 2)
    assert classification_metrics([1], [1], 3) == {"accuracy": 1.0, "macro_f1": 1.0}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 predictions for 3 gold labels"):
        accuracy([0, 1], [0, 1, 1])
