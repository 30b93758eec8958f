import subprocess
import sys

import pytest

from tformer import Seq2SeqTransformer, Translator
from tformer.data.corpus import multi30k
from tformer.text.bpe import BPETokenizer

from tests.conftest import tiny_config


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A complete model folder: a BPE trained on Multi30k val and a random tiny Transformer."""
    folder = tmp_path_factory.mktemp("model")
    val = multi30k("val")
    tok = BPETokenizer.train(val.src + val.tgt, vocab_size=500)
    model = Seq2SeqTransformer(tiny_config(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size,
                                           max_len=48))
    Translator(model, tok).save_pretrained(folder)
    return folder


def run_cli(*args, stdin: bytes = b"", env=None):
    return subprocess.run([sys.executable, "-m", "tformer.cli.main", *args], input=stdin, capture_output=True,
                          timeout=300, env=env)
