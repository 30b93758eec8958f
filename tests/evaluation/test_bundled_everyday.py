"""The bundled translator against the everyday figures its results.json records (issue 19's checks). Skipped while
the bundled model's card predates them (scripts/bundle_model.py records them)."""

import json

import pytest

from tformer import Translator
from tformer.decoding.translator import BUNDLED_MODEL
from tformer.evaluation.everyday import everyday_check
from tformer.evaluation.names import unseen_names_check
from tformer.evaluation.numbers import numbers_check

RESULTS = json.loads((BUNDLED_MODEL / "results.json").read_text()) if (BUNDLED_MODEL / "results.json").is_file() else {}
pytestmark = pytest.mark.skipif("numbers_beam4" not in RESULTS, reason="the bundled model's card predates these checks")


def recorded(key: str) -> dict:
    if key not in RESULTS:
        pytest.skip(f"{BUNDLED_MODEL}/results.json has no {key!r} yet")
    return RESULTS[key]


@pytest.fixture(scope="module")
def translate():
    translator = Translator.from_pretrained(BUNDLED_MODEL)
    return lambda sources: translator.translate(sources, beam=4)  # the card's tuned length penalty


def test_numbers_are_as_right_as_the_card_says(translate):
    figures = recorded("numbers_beam4")
    result = numbers_check(translate)
    assert result.total == figures["total"] and result.right >= figures["right"] - 1, result.failures[:5]


def test_everyday_sentences_are_as_acceptable_as_the_card_says(translate):
    figures = recorded("everyday_beam4")
    result = everyday_check(translate)
    assert result.total == figures["total"] and result.acceptable >= figures["acceptable"] - 1
    assert result.bleu >= figures["bleu"] - 1.0


@pytest.mark.slow
def test_unseen_names_and_places_are_as_right_as_the_card_says(translate):
    figures = recorded("unseen_names_and_places_beam4")
    report = unseen_names_check(translate).to_dict()
    for part in ("names", "translated_places", "copied_places"):
        assert report[part]["total"] == figures[part]["total"]
        assert report[part]["rate"] >= figures[part]["rate"] - 0.03, (part, report[part]["failures"][:5])
