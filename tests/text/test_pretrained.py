"""The pretrained-encoder Tokenizer: same ids as transformers' AutoTokenizer, vocab.txt fallback, truncation said
once, save/load round trip."""

import logging
import shutil

import pytest
import torch

from tformer.errors import ModelFolderError
from tformer.pretrained import resolve_pretrained
from tformer.text.pretrained import Tokenizer

from tests.models.bert_helpers import write_vocab_folder

TEXTS = [
    "Transformers are amazing for NLP.",
    "Ünïcödé, accents and 中文 characters!",
    "a",
    "don't split-words wrongly: e-mail @home #1",
]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return Tokenizer.from_pretrained("minilm")


def test_matches_transformers_autotokenizer_with_padding_and_pairs(minilm_tokenizer):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(resolve_pretrained("minilm")))
    ours = minilm_tokenizer(TEXTS)
    theirs = hf(TEXTS, padding=True, return_tensors="pt")
    for key in ours.keys():
        assert torch.equal(ours[key], theirs[key]), key
    ours = minilm_tokenizer(TEXTS[:2], TEXTS[2:])
    theirs = hf(TEXTS[:2], TEXTS[2:], padding=True, return_tensors="pt")
    assert ours.token_type_ids.max() == 1
    for key in ours.keys():
        assert torch.equal(ours[key], theirs[key]), key


def test_vocab_txt_alone_gives_the_same_ids_as_tokenizer_json(tmp_path, minilm_tokenizer):
    source = resolve_pretrained("minilm")
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, tmp_path / name)
    from_vocab = Tokenizer.from_pretrained(tmp_path)
    a, b = from_vocab(TEXTS, TEXTS[::-1]), minilm_tokenizer(TEXTS, TEXTS[::-1])
    for key in a.keys():
        assert torch.equal(a[key], b[key]), key
    assert from_vocab.decode(from_vocab.encode(TEXTS[0])) == "transformers are amazing for nlp."


def test_truncation_keeps_the_special_tokens_and_is_said_once(minilm_tokenizer, caplog):
    long_text = "word " * 50
    tokenizer = Tokenizer.from_pretrained("minilm")
    with caplog.at_level(logging.WARNING, logger="tformer"):
        batch = tokenizer([long_text, "short"], max_length=8)
        tokenizer([long_text], max_length=8)
    assert batch.input_ids.shape == (2, 8)
    assert batch.input_ids[0, 0].item() == 101 and batch.input_ids[0, -1].item() == 102  # [CLS] ... [SEP]
    assert len(caplog.records) == 1 and "1 text(s) longer than 8 tokens were truncated" in caplog.text


def test_default_limit_is_the_checkpoint_model_max_length(minilm_tokenizer):
    assert minilm_tokenizer.model_max_length == 512
    assert minilm_tokenizer("word " * 600).input_ids.shape == (1, 512)
    assert minilm_tokenizer("word " * 600, truncation=False).input_ids.shape == (1, 602)


def test_padding_modes(minilm_tokenizer):
    assert minilm_tokenizer(["a", "b c"], padding="max_length", max_length=10).input_ids.shape == (2, 10)
    with pytest.raises(ValueError, match="different lengths"):
        minilm_tokenizer(["a", "b c d"], padding=False)


def test_batch_unpacks_into_a_model_call(minilm_tokenizer):
    batch = minilm_tokenizer("hello")
    assert dict(**batch).keys() == {"input_ids", "attention_mask", "token_type_ids"}


def test_save_pretrained_round_trip_and_transformers_loads_it(tmp_path):
    tokenizer = Tokenizer.from_pretrained(write_vocab_folder(tmp_path / "src"))
    tokenizer.save_pretrained(tmp_path / "out")
    again = Tokenizer.from_pretrained(tmp_path / "out")
    texts = ["The movie was GREAT!", "boring and dull"]
    assert torch.equal(tokenizer(texts).input_ids, again(texts).input_ids)
    assert again.model_max_length == 40
    assert tokenizer.tokens("Movies")[1:3] == ["movie", "##s"]
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert torch.equal(hf(texts, padding=True, return_tensors="pt")["input_ids"], again(texts).input_ids)


def test_folder_without_tokenizer_files_lists_what_it_found(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelFolderError, match=r"missing tokenizer\.json or vocab\.txt \(found: config\.json\)"):
        Tokenizer.from_pretrained(tmp_path)
