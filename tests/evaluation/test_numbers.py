import re

import pytest

from tformer.evaluation.numbers import NUMBER_SENTENCES, expected_numbers, number_problems, numbers_check

REFERENCES = dict(NUMBER_SENTENCES)


def test_the_references_keep_every_number_right_and_a_copy_of_the_german_does_not():
    result = numbers_check(lambda sources: [REFERENCES[s] for s in sources])
    assert result.rate == 1.0 and result.right == result.total == len(NUMBER_SENTENCES) >= 40
    copied = numbers_check(lambda sources: sources)  # decimal commas, afternoon times and German months stay wrong
    assert 0 < copied.rate < 1
    wrong_as_german = r"\d,\d|\b(1[3-9]|2\d)(\.\d\d)? Uhr|\d\.\d\d Uhr|\d\. (März|Mai|Juni|Oktober|Dezember)"
    assert {de for de, _, _ in copied.failures} >= {de for de, _ in NUMBER_SENTENCES if re.search(wrong_as_german, de)}


def test_the_check_covers_prices_decimals_dates_times_and_number_words():
    kinds = " ".join(e.german for de, _ in NUMBER_SENTENCES for e in expected_numbers(de))
    for piece in ("Euro", "Uhr", "März", "sieben"):
        assert any(piece in de for de, _ in NUMBER_SENTENCES)
    assert re.search(r"\d,\d", kinds) and re.search(r"\d\.\d{3}", kinds) and "Uhr" in kinds and "sieben" in kinds


@pytest.mark.parametrize("german, english", [(de, en) for de, en in NUMBER_SENTENCES if re.search(r"\d", de)])
def test_a_dropped_or_changed_digit_is_caught(german, english):
    digits = [m.start() for m in re.finditer(r"\d", english)]
    dropped = english[: digits[-1]] + english[digits[-1] + 1:]
    changed = english[: digits[0]] + str((int(english[digits[0]]) + 1) % 10) + english[digits[0] + 1:]
    assert number_problems(german, dropped) and number_problems(german, changed)


def test_decimal_commas_must_become_points():
    assert number_problems("Das Paket wiegt 3,5 Kilo.", "The parcel weighs 3.5 kilos.") == []
    for wrong in ("3,5 kilos", "35 kilos", "3.6 kilos", "3 kilos", "3.5.5 kilos"):
        assert number_problems("Das Paket wiegt 3,5 Kilo.", f"The parcel weighs {wrong}."), wrong
    assert number_problems("Die Stadt hat 1.500 Einwohner.", "It has 1500 people.") == []
    assert number_problems("Die Stadt hat 1.500 Einwohner.", "It has 1.500 people.")  # a German thousands dot


@pytest.mark.parametrize("english", ["at 3 p.m.", "at 3pm", "at 3 PM", "at 15:00", "at 3:00 p.m."])
def test_afternoon_uhr_times_take_either_clock(english):
    assert number_problems("Wir kommen um 15 Uhr.", f"We are coming {english}.") == []


@pytest.mark.parametrize("english", ["at 15", "at 3 a.m.", "at 3", "at 5 p.m.", "at 15 o'clock"])
def test_wrong_times_are_caught(english):
    assert number_problems("Wir kommen um 15 Uhr.", f"We are coming {english}.")


def test_morning_times_half_hours_dates_and_words():
    assert not number_problems("Um 8 Uhr.", "At eight o'clock.") and number_problems("Um 8 Uhr.", "At 8 p.m.")
    assert not number_problems("Um 17.45 Uhr.", "At 5:45 pm.") and number_problems("Um 17.45 Uhr.", "At 17.45.")
    assert not number_problems("Am 12. März.", "On the 12th of March.")
    assert number_problems("Am 12. März.", "On 12 March 12.")  # an extra number
    assert number_problems("Am 3. Mai.", "It may be the 3rd.")  # "may" is not the month
    assert not number_problems("Sie ist sieben.", "She is Seven.") and not number_problems("Sie ist sieben.", "7.")
    assert number_problems("Sie ist sieben.", "She is her.")


def test_noon_and_midnight():
    assert not number_problems("Um 12 Uhr essen wir.", "We eat at noon.")
    assert not number_problems("Um 0 Uhr schlafen wir.", "We sleep at midnight.")
    assert number_problems("Um 12 Uhr essen wir.", "We eat at midnight.")
