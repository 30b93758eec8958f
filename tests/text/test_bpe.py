import pytest

from tformer.data.corpus import multi30k
from tformer.errors import ModelFolderError
from tformer.text.bpe import BPETokenizer


@pytest.fixture(scope="module")
def multi30k_bpe():
    train = multi30k("train")
    return BPETokenizer.train(train.src + train.tgt, vocab_size=4000)


def test_special_tokens_have_the_model_ids(multi30k_bpe):
    tok = multi30k_bpe
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert tok.vocab_size == 4000


def test_decode_encode_reproduces_every_validation_sentence(multi30k_bpe):
    tok = multi30k_bpe
    val = multi30k("val")
    seen = set("".join(multi30k("train").src + multi30k("train").tgt))
    mismatches = []
    for sentence in val.src + val.tgt:
        if tok.decode(tok.encode(sentence)) != tok.normalize(sentence):
            mismatches.append(sentence)
    # the only sentences allowed to differ are those with characters never seen in training
    assert all(set(s) - seen for s in mismatches), mismatches[:3]
    assert len(mismatches) <= 5


def test_normalisation_is_documented_behaviour(multi30k_bpe):
    tok = multi30k_bpe
    assert tok.normalize("  Ein   Mann\tfährt \n") == "Ein Mann fährt"
    assert tok.decode(tok.encode("  Ein   Mann\tfährt \n")) == "Ein Mann fährt"


def test_unseen_characters_become_unknown_tokens(multi30k_bpe):
    tok = multi30k_bpe
    ids = tok.encode("Ein Mann 🚲 fährt ☃")
    assert tok.unk_id in ids
    assert tok.decode(ids).startswith("Ein Mann")


def test_save_and_load_round_trip(tmp_path, multi30k_bpe):
    multi30k_bpe.save_pretrained(tmp_path)
    loaded = BPETokenizer.from_pretrained(tmp_path)
    text = "Zwei Hunde spielen im Schnee."
    assert loaded.encode(text) == multi30k_bpe.encode(text)
    with pytest.raises(ModelFolderError, match="tokenizer file missing"):
        BPETokenizer.from_pretrained(tmp_path / "nope")


SMALL_TEXT = ["Ich habe 25 Euro und 3,50 Euro.", "Am 12. März 1985 um 15.30 Uhr.", "Er ist 1,85 Meter groß.",
              "Nummer 0171 2345678 und 9 Katzen."] * 40


def test_split_digits_makes_every_digit_a_token_and_decodes_exactly():
    merged = BPETokenizer.train(SMALL_TEXT, vocab_size=200, min_frequency=1)
    split = BPETokenizer.train(SMALL_TEXT, vocab_size=200, min_frequency=1, split_digits=True)
    assert not merged.splits_digits and split.splits_digits
    assert any(len(t.strip("▁")) > 1 and t.strip("▁").isdigit() for t in merged.tokens("1985 und 3,50"))
    for sentence in ("Am 12. März 1985 um 15.30 Uhr.", "Nummer 0171 2345678", "3,5 und 42"):
        tokens = split.tokens(sentence)
        assert all(len(t) == 1 for t in tokens if any(c.isdigit() for c in t)), tokens
        assert split.decode(split.encode(sentence)) == sentence


def test_with_split_digits_keeps_the_vocabulary_and_words_and_only_splits_numbers(tmp_path):
    merged = BPETokenizer.train(SMALL_TEXT, vocab_size=200, min_frequency=1)
    split = merged.with_split_digits()
    assert split.vocab_size == merged.vocab_size and split.splits_digits and not merged.splits_digits
    words = "Ich habe Euro und Meter groß."
    assert split.encode(words) == merged.encode(words)  # text without digits: the same ids
    sentence = "Am 12. März 1985 um 15.30 Uhr."
    assert split.encode(sentence) != merged.encode(sentence)
    assert split.decode(split.encode(sentence)) == merged.decode(merged.encode(sentence)) == sentence
    split.save_pretrained(tmp_path)
    assert BPETokenizer.from_pretrained(tmp_path).splits_digits  # the pre-tokenizer is saved with the file


def test_with_split_digits_says_which_tokens_the_vocabulary_lacks():
    no_digits = BPETokenizer.train(["Ein Mann fährt Fahrrad."] * 20, vocab_size=60, min_frequency=1)
    with pytest.raises(ValueError, match="lacks the tokens 0 1 2"):
        no_digits.with_split_digits()
