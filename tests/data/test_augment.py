import random
import re

from tformer.data.augment import (
    COPIED_TOWNS,
    ENGLISH_PLACE_NAMES,
    mixed_number_pairs,
    number_pairs,
    substitute_places,
)
from tformer.data.names import pseudo_name, substitute_names
from tformer.evaluation.names import TRANSLATED_PLACES, UNSEEN_COPIED_PLACES, UNSEEN_NAMES, word_pattern
from tformer.evaluation.numbers import NUMBER_SENTENCES, number_problems
from tformer.training.data import EVALUATION_WORDS

SRC = ["Ich wohne in Boston.", "Tom war in Paris und London.", "Es regnet.", "Tom ist in Chicago."]
TGT = ["I live in Boston.", "Tom was in Paris and London.", "It's raining.", "Tom is in Chicago."]


def test_every_generated_number_pair_passes_the_numbers_check_and_none_is_one_of_its_sentences():
    src, tgt = number_pairs(3000, seed=5)
    assert len(src) == len(tgt) == 3000 and len(set(src)) > 2000
    assert all(not number_problems(de, en) for de, en in zip(src, tgt))
    assert not set(src) & {de for de, _ in NUMBER_SENTENCES}
    assert any("," in de for de in src) and any("Uhr" in de for de in src) and any("März" in de for de in src)
    assert number_pairs(50, seed=5) == (src[:50], tgt[:50])  # seeded


def test_every_mixed_number_pair_passes_the_numbers_check_and_covers_what_stage_2_got_wrong():
    src, tgt = mixed_number_pairs(3000, seed=6)
    assert len(src) == len(tgt) == 3000 and len(set(src)) > 2000
    assert all(not number_problems(de, en) for de, en in zip(src, tgt))
    assert not set(src) & {de for de, _ in NUMBER_SENTENCES}
    years = re.compile(r"\b1[0-9]{3}\b|\b20[0-9]{2}\b")
    assert sum(bool(years.search(de)) for de in src) > 500
    assert any(re.search(r"\d+\. \w+ um \d", de) for de in src)  # a date with a clock time
    assert any(re.search(r"\d+\. \w+ \d{4}", de) for de in src)  # a date with a year
    assert any(re.search(r"\d+,\d+ (Grad|Meter)", de) for de in src)  # decimals with units
    assert any(de.startswith(("Es ist", "Jetzt ist es")) and "Uhr" in de for de in src)
    assert mixed_number_pairs(40, seed=6) == (src[:40], tgt[:40])  # seeded


def test_place_substitution_changes_both_sides_consistently():
    src, tgt = substitute_places(SRC, TGT, 400, seed=1, avoid=EVALUATION_WORDS)
    assert len(src) == 400 and not any("Boston" in s or "Chicago" in s for s in src)
    translated = copied = 0
    for de, en in zip(src, tgt):
        found = [(g, e) for g, e in ENGLISH_PLACE_NAMES.items() if word_pattern(g).search(de)]
        if found:
            translated += 1
            assert all(word_pattern(e).search(en) and not word_pattern(g).search(en) for g, e in found)
        else:
            copied += 1
            new = set(de.rstrip(".").split()) - set(" ".join(SRC).rstrip(".").split())
            assert new and all(word in en for word in new)
    assert translated > 100 and copied > 100


def test_the_augmentation_never_uses_the_evaluation_names_or_towns():
    assert set(TRANSLATED_PLACES.items()) <= set(ENGLISH_PLACE_NAMES.items())  # a closed list: learnt one by one
    assert not set(COPIED_TOWNS) & set(UNSEEN_COPIED_PLACES)
    rng = random.Random(0)
    assert not {pseudo_name(rng, 0.5, EVALUATION_WORDS) for _ in range(30000)} & set(UNSEEN_NAMES)
    src, _ = substitute_names(SRC, TGT, ("Tom",), 3000, seed=3, vowel_share=0.5, avoid=EVALUATION_WORDS)
    used = {w for s in src for w in s.rstrip(".").split()}
    assert not used & EVALUATION_WORDS
    assert sum(s[0] in "AEIOU" for s in src) > 1000  # vowel-initial names, as asked
    places, _ = substitute_places(SRC, TGT, 3000, seed=4, avoid=EVALUATION_WORDS)
    assert not {w for s in places for w in s.rstrip(".").split()} & EVALUATION_WORDS


def test_the_training_corpus_adds_the_requested_augmented_pairs():
    from tformer.training.data import training_corpus
    from tformer.training.recipe import DataConfig

    base = training_corpus(DataConfig(), seed=1)
    cfg = DataConfig(name_substitutions=7, name_vowel_share=0.5, place_substitutions=5, number_pairs=11)
    corpus = training_corpus(cfg, seed=1)
    assert len(corpus) == len(base) + 7 + 5 + 11 and corpus.src[: len(base)] == base.src
    assert all(not number_problems(de, en) for de, en in zip(corpus.src[-11:], corpus.tgt[-11:]))
    more = training_corpus(DataConfig(name_substitutions=7, name_vowel_share=0.5, place_substitutions=5,
                                      number_pairs=11, wordlike_name_substitutions=6, mixed_number_pairs=4), seed=1)
    assert more.src[: len(corpus)] == corpus.src and len(more) == len(corpus) + 6 + 4  # older recipes unchanged
    assert not {w for s in more.src[len(corpus):] for w in re.findall(r"\w+", s)} & EVALUATION_WORDS
