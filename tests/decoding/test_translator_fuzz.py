"""Arbitrary input to Translator.translate: no crash, bounded time, one output line per input."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tformer import Seq2SeqTransformer, Translator
from tformer.data.corpus import multi30k
from tformer.text.bpe import BPETokenizer

from tests.conftest import tiny_config
from tests.text.test_fuzz import NASTY


@pytest.fixture(scope="module")
def translator():
    val = multi30k("val")
    tok = BPETokenizer.train(val.src + val.tgt, vocab_size=600)
    return Translator(Seq2SeqTransformer(tiny_config(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size,
                                                     max_len=40)).eval(), tok)


@settings(max_examples=25, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(NASTY, min_size=0, max_size=5), beam=st.sampled_from([1, 3]))
def test_translate_anything_keeps_alignment(translator, texts, beam):
    out = translator.translate(texts, beam=beam, max_len_b=3)
    assert len(out) == len(texts)
    for src, hyp in zip(texts, out):
        assert isinstance(hyp, str) and "\n" not in hyp
        if not src.strip():
            assert hyp == ""
