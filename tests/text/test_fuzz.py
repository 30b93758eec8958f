"""Arbitrary Unicode never crashes the tokenizers (hypothesis)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tformer.data.corpus import multi30k
from tformer.text.bpe import BPETokenizer
from tformer.text.pretrained import Tokenizer

NASTY = st.one_of(
    st.text(max_size=200),
    st.sampled_from([
        "", " ", "\t\n ", "🙂🚲👍🏽", "مرحبا بالعالم", "\u202e\u200f abc", "\x00\x01\x1b[31m", "a" * 100_000,
        "\ufeffZero\u200bwidth", "e\u0301 \u00e9",
    ]),
)


@pytest.fixture(scope="module")
def bpe():
    val = multi30k("val")
    return BPETokenizer.train(val.src + val.tgt, vocab_size=800)


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=NASTY)
def test_bpe_encodes_and_decodes_anything(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    out = bpe.decode(ids)
    assert isinstance(out, str) and "\n" not in out
    if not text.strip():
        assert out == ""


@settings(max_examples=40, deadline=2000)
@given(texts=st.lists(NASTY, min_size=1, max_size=4))
def test_wordpiece_tokenizer_pads_and_truncates_anything(texts):
    tok = Tokenizer.from_pretrained("minilm")
    batch = tok(texts, padding=True, truncation=True, max_length=32)
    assert batch["input_ids"].shape[0] == len(texts) and batch["input_ids"].shape[1] <= 32
    assert batch["attention_mask"].shape == batch["input_ids"].shape
