import random
import re

from tformer.data.corpus import multi30k, tatoeba
from tformer.data.names import HELD_OUT_NAMES, pseudo_name, word_pattern
from tformer.evaluation.names import (
    EVERYDAY_NAME_FRAMES,
    NAME_FRAMES,
    PLACE_FRAMES,
    TRANSLATED_PLACES,
    UNSEEN_COPIED_PLACES,
    UNSEEN_NAMES,
    name_copy_rate,
    unseen_names_check,
)


def test_name_copy_rate_counts_translations_that_keep_the_name():
    names = ["Piyush", "Kavya"]

    def perfect(sources):  # a stand-in model that copies the name through, possessive or not
        return [f"I know {n}'s dog." if n in s and i % 2 else f"{n}." for i, s in enumerate(sources) for n in names
                if n in s]

    result = name_copy_rate(perfect, names)
    assert result.total == 2 * len(NAME_FRAMES) and result.rate == 1.0 and not result.failures

    def mangles_piyush(sources):
        return [s.replace("Piyush", "Piyyiood") for s in sources]

    result = name_copy_rate(mangles_piyush, names)
    assert result.copied == len(NAME_FRAMES) and result.rate == 0.5
    assert all("Piyyiood" in out for _, out in result.failures)


def english_places(sources):
    out = []
    for s in sources:
        for de, en in TRANSLATED_PLACES.items():
            s = word_pattern(de).sub(en, s)
        out.append(s)
    return out


def test_the_broader_check_scores_a_perfect_translator_100_and_splits_by_first_letter():
    report = unseen_names_check(english_places)  # names and copied places pass through, places get English
    for part in (report.names, report.translated_places, report.copied_places):
        assert part.rate == 1.0 and not part.failures
    assert report.names.total == len(UNSEEN_NAMES) * len(EVERYDAY_NAME_FRAMES)
    assert report.vowel_initial.total == report.consonant_initial.total  # half the names start with a vowel
    copied = unseen_names_check(lambda sources: sources)  # "München" left as it is: wrong
    assert copied.names.rate == 1.0 and copied.translated_places.rate == 0.0 and copied.copied_places.rate == 1.0
    both = unseen_names_check(lambda src: [f"{e} ({s})" for e, s in zip(english_places(src), src)])
    assert both.translated_places.rate == 0.0  # the English form beside the German one is not a translation


def test_a_mangled_vowel_initial_name_is_caught():
    report = unseen_names_check(lambda src: [s.replace("Aarav", "Arav") for s in english_places(src)])
    assert report.vowel_initial.total - report.vowel_initial.copied == len(EVERYDAY_NAME_FRAMES)
    assert report.consonant_initial.rate == 1.0


def test_evaluation_names_and_frames_are_not_the_augmentations_own():
    assert not set(UNSEEN_NAMES) & HELD_OUT_NAMES and not set(EVERYDAY_NAME_FRAMES) & set(NAME_FRAMES)
    rng = random.Random(0)
    generated = {pseudo_name(rng) for _ in range(20000)}
    assert not generated & set(UNSEEN_NAMES) and not generated & set(UNSEEN_COPIED_PLACES)
    assert len(PLACE_FRAMES) >= 6 and len(EVERYDAY_NAME_FRAMES) >= 12


def test_unseen_names_and_copied_places_never_occur_in_the_training_corpora():
    words = set()
    for corpus in (tatoeba("train"), multi30k("train")):
        for line in corpus.src + corpus.tgt:
            words.update(re.findall(r"\w+", line))
    assert not words & (set(UNSEEN_NAMES) | set(UNSEEN_COPIED_PLACES))
