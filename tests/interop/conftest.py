import pytest
import torch

from tformer.data.corpus import multi30k
from tformer.decoding.translator import Translator
from tformer.models import Seq2SeqTransformer
from tformer.text.bpe import BPETokenizer

from tests.conftest import tiny_config


@pytest.fixture(scope="session")
def validation_sentences() -> list[str]:
    return multi30k("val").src[:16]


@pytest.fixture(scope="session")
def tiny_tokenizer() -> BPETokenizer:
    val = multi30k("val")
    return BPETokenizer.train(val.src[:400] + val.tgt[:400], vocab_size=301)


@pytest.fixture
def tiny_translator(tiny_tokenizer) -> Translator:
    """A random tiny Transformer (odd sizes) over a real BPE, with non-trivial norms and logits bias."""
    v = tiny_tokenizer.vocab_size
    model = Seq2SeqTransformer(tiny_config(src_vocab_size=v, tgt_vocab_size=v, d_model=27, num_heads=3, d_ff=41,
                                           max_len=128))
    perturb(model)
    return Translator(model.eval(), tiny_tokenizer)


def perturb(model: Seq2SeqTransformer) -> None:
    """Random LayerNorm parameters and output bias, so a weight copied to the wrong place changes the output."""
    with torch.no_grad():
        model.output.bias.normal_()
        for name, param in model.named_parameters():
            if "norm" in name:
                param.add_(torch.randn_like(param) * 0.3)
