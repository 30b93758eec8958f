"""A tiny translator for tests: BPE trained on a slice of Multi30k validation data, a random odd-sized model."""

from __future__ import annotations

from functools import lru_cache

import torch

from tformer.data.corpus import multi30k
from tformer.decoding.translator import Translator
from tformer.models import Seq2SeqTransformer
from tformer.text.bpe import BPETokenizer

from tests.conftest import tiny_config

SENTENCES = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen.", "Eine Frau liest ein Buch"]  # 14, 13, 10 subwords


@lru_cache(maxsize=1)
def _tokenizer() -> BPETokenizer:
    corpus = multi30k("val")
    return BPETokenizer.train(corpus.src[:200] + corpus.tgt[:200], vocab_size=150)


def tiny_translator(eos_bias: float = 3.2, seed: int = 0, max_len: int = 16) -> Translator:
    """Random weights. With the default ``eos_bias`` on the output layer, greedy search ends at once, beam search
    ends one sentence on its own and runs the others to the length limit, choosing tokens that are not the most
    probable along the way. ``max_len`` 16 keeps outputs short: at most 15 tokens."""
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = tiny_config(src_vocab_size=tokenizer.vocab_size, tgt_vocab_size=tokenizer.vocab_size, max_len=max_len)
    model = Seq2SeqTransformer(config).eval()
    with torch.no_grad():
        model.output.bias[config.eos_id] = eos_bias
    return Translator(model, tokenizer)
