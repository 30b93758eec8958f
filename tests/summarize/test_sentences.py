"""split_sentences: boundaries at terminal punctuation, not after abbreviations, initials or decimals."""

import pytest

from tformer.summarize.sentences import cut_to_fit, split_sentences


def test_sentence_boundaries_and_non_boundaries():
    text = ("We follow Devlin et al. (2019) closely. Accuracy rose to 90.3 percent, e.g. on SST-2! "
            "Did J. Smith agree? \"Yes.\" It works")
    assert split_sentences(text) == [
        "We follow Devlin et al. (2019) closely.",
        "Accuracy rose to 90.3 percent, e.g. on SST-2!",
        "Did J. Smith agree?",
        "\"Yes.\"",
        "It works",
    ]


def test_blank_lines_end_sentences_and_wrapped_lines_join():
    text = "Introduction\n\nThe model is\nsmall. It is fast.\n\n\n  \n"
    assert split_sentences(text) == ["Introduction", "The model is small.", "It is fast."]


def test_joining_the_sentences_gives_back_the_words():
    text = "One. Two three? Four! Five (six). Seven e.g. eight. Nine"
    assert " ".join(split_sentences(text)).split() == text.split()


def test_empty_text_has_no_sentences():
    assert split_sentences("") == [] and split_sentences(" \n\n ") == []


@pytest.mark.parametrize("limit", [3, 7, 50])
def test_cut_to_fit_keeps_every_word_in_order_within_the_limit(limit):
    text = " ".join(f"w{i}" for i in range(40))
    pieces = cut_to_fit(text, lambda t: len(t.split()), limit)
    assert " ".join(pieces) == text and all(len(p.split()) <= limit for p in pieces)
    assert (len(pieces) == 1) == (limit == 50)
    word = "x" * 100  # one word longer than the limit: cut at characters
    assert "".join(cut_to_fit(word, len, 30)) == word and all(len(p) <= 30 for p in cut_to_fit(word, len, 30))
