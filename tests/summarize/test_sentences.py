"""split_sentences: boundaries at terminal punctuation, not after abbreviations, initials or decimals."""

from tformer.summarize.sentences import split_sentences


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
