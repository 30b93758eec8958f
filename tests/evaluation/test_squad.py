"""The SQuAD v1.1 metric on hand-made cases: normalisation, exact match, multiset token F1, the best reference."""

import pytest

from tformer.evaluation.squad import exact_match_score, f1_score, normalize_answer, squad_metrics


@pytest.mark.parametrize("text, normal", [
    ("The  Quick, brown fox!", "quick brown fox"),
    ("an apple a day", "apple day"),
    ("Theory of the atom", "theory of atom"),  # 'the' inside a word stays
    ("  U.S.A.  ", "usa"),
    ("A", ""),
])
def test_normalize_answer(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_ignores_case_punctuation_and_articles():
    assert exact_match_score("The Denver Broncos.", "denver broncos") == 1.0
    assert exact_match_score("Denver", "denver broncos") == 0.0


def test_f1_counts_tokens_as_a_multiset():
    assert f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert f1_score("x x y", "x y") == pytest.approx(2 * (2 / 3) * 1.0 / (2 / 3 + 1.0))
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("the", "a") == 0.0  # both normalise to nothing: no common token


def test_metrics_take_the_best_reference_and_score_missing_answers_zero():
    refs = {"q1": ["Denver Broncos", "the Broncos"], "q2": ["1998"], "q3": ["left"]}
    preds = {"q1": "Broncos", "q2": "in 1998", "unknown": "x"}
    m = squad_metrics(preds, refs)
    f1_q1 = 1.0  # "Broncos" matches "the Broncos" exactly
    f1_q2 = 2 * 0.5 * 1.0 / 1.5
    assert m["exact_match"] == pytest.approx(100 * 1 / 3)
    assert m["f1"] == pytest.approx(100 * (f1_q1 + f1_q2) / 3)
    assert (m["questions"], m["answered"]) == (3, 2)


def test_no_references_is_an_error():
    with pytest.raises(ValueError):
        squad_metrics({}, {})
