from tformer.evaluation.everyday import (
    EverydaySentence,
    everyday_check,
    is_acceptable,
    load_everyday_sentences,
    normalize,
)


def test_the_data_file_has_at_least_40_sentences_over_the_seven_topics():
    sentences = load_everyday_sentences()
    assert len(sentences) >= 40 and len({s.german for s in sentences}) == len(sentences)
    assert {s.topic for s in sentences} == {"greetings", "requests", "directions", "shopping", "time", "family", "work"}


def test_perfect_translations_score_100_and_acceptable_alternatives_count():
    sentences = load_everyday_sentences()
    by_german = {s.german: s for s in sentences}
    perfect = everyday_check(lambda src: [by_german[g].reference for g in src], sentences)
    assert perfect.acceptable == perfect.total == len(sentences) and round(perfect.bleu, 6) == 100.0
    alternative = everyday_check(lambda src: [by_german[g].translations[-1] for g in src], sentences)
    assert alternative.rate == 1.0 and alternative.bleu < 100
    copied = everyday_check(lambda src: src, sentences)  # German left untranslated
    assert copied.acceptable == 0 and copied.bleu < 10 and len(copied.rejected) == len(sentences)


def test_normalisation_ignores_case_punctuation_and_contractions_but_not_words():
    s = EverydaySentence("greetings", "Mir geht es gut.", ("I'm fine, thanks.",))
    assert normalize("I’m FINE,  thanks!") == normalize("I am fine thanks") == "i am fine thanks"
    assert is_acceptable("I am fine thanks", s) and not is_acceptable("I'm fine.", s)
    assert not is_acceptable("I'm not fine, thanks.", s)
