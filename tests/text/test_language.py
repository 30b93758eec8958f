"""looks_german tells the seed text's German and English examples apart."""

import pytest

from tformer.text.language import looks_german


@pytest.mark.parametrize("text", ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee", "Ich bin Piyush.",
                                  "Wo ist der Bahnhof?"])
def test_german(text):
    assert looks_german(text)


@pytest.mark.parametrize("text", ["The cat drank the milk because it was hungry.", "The cat sat on the mat.",
                                  "A man rides a bike.", "the movie was good", "Hello"])
def test_english(text):
    assert not looks_german(text)
