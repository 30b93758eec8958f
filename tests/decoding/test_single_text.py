"""Translator.translate("one sentence") gives one translation, the same as in a batch, not one per character."""

import pytest

from tests.decoding.tiny import SENTENCES, tiny_translator


def test_one_string_gives_one_translation_equal_to_its_batch_result():
    translator = tiny_translator(eos_bias=0.0)
    single = translator.translate(SENTENCES[0], beam=2)
    assert isinstance(single, str)
    assert single == translator.translate([SENTENCES[0]], beam=2)[0]
    nbest = translator.translate_nbest(SENTENCES[0], beam=2, nbest=2)
    assert nbest == translator.translate_nbest([SENTENCES[0]], beam=2, nbest=2)[0]


@pytest.mark.parametrize("wrong", [b"Hallo", 42, None, ["Hallo", 1]])
def test_wrong_types_are_a_clear_type_error(wrong):
    with pytest.raises(TypeError, match="string or a list of strings"):
        tiny_translator().translate(wrong)
