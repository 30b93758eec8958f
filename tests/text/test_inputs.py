"""One string is one text; a list of strings is a batch; anything else is a TypeError naming what was given."""

import pytest

from tformer.text.inputs import text_batch


def test_a_string_is_one_text_not_its_characters():
    assert text_batch("Hallo Welt") == (["Hallo Welt"], True)
    assert text_batch("") == ([""], True)


@pytest.mark.parametrize("texts", [["a", "b c"], ("a", "b c"), []])
def test_sequences_of_strings_are_batches(texts):
    assert text_batch(texts) == (list(texts), False)


@pytest.mark.parametrize("wrong", [b"bytes", 3, None, {"text": "a"}, ["ok", 5], [["nested"]]])
def test_other_types_are_a_type_error_naming_the_argument(wrong):
    with pytest.raises(TypeError, match="texts must be a string or a list of strings"):
        text_batch(wrong)
