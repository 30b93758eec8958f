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
