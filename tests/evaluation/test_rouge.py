"""ROUGE wrapper: hand-countable cases, stemming, best over references, corpus mean."""

import pytest

from tformer.evaluation.rouge import corpus_rouge, rouge


def f1(overlap: int, predicted: int, reference: int) -> float:
    p, r = overlap / predicted, overlap / reference
    return 2 * p * r / (p + r) if overlap else 0.0


def test_identical_and_disjoint():
    same = rouge("the cat sat on the mat", "the cat sat on the mat")
    assert (same.rouge1, same.rouge2, same.rougeL) == (1.0, 1.0, 1.0)
    none = rouge("dogs bark loudly", "a cat sat")
    assert (none.rouge1, none.rouge2, none.rougeL) == (0.0, 0.0, 0.0)


def test_hand_counted_overlap():
    # summary: "cat sat on a mat" (5 tokens); reference: "the cat sat on the red mat" (7 tokens)
    # unigrams shared: cat sat on mat = 4; bigrams shared: "cat sat", "sat on" = 2 of 4 and 6; LCS: cat sat on mat = 4
    s = rouge("cat sat on a mat", "the cat sat on the red mat")
    assert s.rouge1 == pytest.approx(f1(4, 5, 7))
    assert s.rouge2 == pytest.approx(f1(2, 4, 6))
    assert s.rougeL == pytest.approx(f1(4, 5, 7))


def test_stemming_matches_word_forms():
    assert rouge("models running", "model runs").rouge1 == 1.0


def test_best_over_references_per_metric():
    refs = ["the cat sat on the mat", "a dog ran in the park"]
    both = rouge("a dog ran", refs)
    assert both.rouge1 == max(rouge("a dog ran", r).rouge1 for r in refs) > 0
    assert both.rouge2 == rouge("a dog ran", refs[1]).rouge2


def test_corpus_rouge_is_the_mean_and_checks_lengths():
    a, b = rouge("cat sat", "the cat sat"), rouge("dog", "a cat")
    corpus = corpus_rouge(["cat sat", "dog"], [["the cat sat"], ["a cat"]])
    assert corpus.rouge1 == pytest.approx((a.rouge1 + b.rouge1) / 2)
    assert corpus.as_percent()["rouge1"] == round(100 * corpus.rouge1, 2)
    with pytest.raises(ValueError):
        corpus_rouge(["one"], [])
    with pytest.raises(ValueError):
        rouge("one", [])
