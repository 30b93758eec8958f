import pytest
import torch
from fastapi.testclient import TestClient

from tformer import Seq2SeqTransformer, Translator
from tformer.data.corpus import multi30k
from tformer.models.pipelines import SentenceEncoder, TextClassifier
from tformer.serve.app import create_app
from tformer.serve.models import ServedModels
from tformer.serve.schemas import ServeLimits
from tformer.text.bpe import BPETokenizer

from tests.conftest import tiny_config
from tests.models.bert_helpers import save_tiny_classifier, save_tiny_encoder


@pytest.fixture(scope="session")
def translator() -> Translator:
    """A random tiny translation model with a real BPE vocabulary (trained on Multi30k val)."""
    torch.manual_seed(0)
    val = multi30k("val")
    tok = BPETokenizer.train(val.src + val.tgt, vocab_size=500)
    model = Seq2SeqTransformer(tiny_config(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, max_len=48))
    return Translator(model, tok)


@pytest.fixture(scope="session")
def encoder(tmp_path_factory) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(save_tiny_encoder(tmp_path_factory.mktemp("encoder")))


@pytest.fixture(scope="session")
def classifier(tmp_path_factory) -> TextClassifier:
    return TextClassifier.from_pretrained(save_tiny_classifier(tmp_path_factory.mktemp("classifier")))


@pytest.fixture(scope="session")
def models(translator, encoder, classifier) -> ServedModels:
    return ServedModels(translator, encoder, classifier, names={"translator": "tiny-de-en", "encoder": "tiny-bert",
                                                                "classifier": "tiny-sentiment"})


LIMITS = ServeLimits(max_chars=200, max_batch_size=8, max_queue=16, max_wait_ms=20.0, max_beam=4)


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(models, LIMITS)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def tiny_model_dir(translator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-de-en")
    translator.save_pretrained(folder)
    return folder
