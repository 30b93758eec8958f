"""Arbitrary input to embed and classify: no crash, one finite row per input."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tformer.models.pipelines import SentenceEncoder, TextClassifier
from tformer.training.finetune import FinetuneConfig, finetune

from tests.models.bert_helpers import save_tiny_encoder, write_toy_sentiment
from tests.text.test_fuzz import NASTY


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("clf")
    (root / "data").mkdir()
    write_toy_sentiment(root / "data")
    save_tiny_encoder(root / "encoder")
    config = FinetuneConfig(model=str(root / "encoder"), data=str(root / "data"), out=str(root / "run"), epochs=1,
                            batch_size=16, max_length=16, threads=1)
    return TextClassifier.from_pretrained(finetune(config, progress=False).best)


@settings(max_examples=15, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(NASTY, min_size=1, max_size=4))
def test_embed_anything(texts):
    vectors = SentenceEncoder.from_pretrained("minilm").encode(texts)
    assert vectors.shape == (len(texts), 384) and torch.isfinite(vectors).all()


@settings(max_examples=25, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(NASTY, min_size=1, max_size=4))
def test_classify_anything(tiny_classifier, texts):
    probs = tiny_classifier.predict_proba(texts)
    assert probs.shape == (len(texts), 2) and torch.isfinite(probs).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(texts)))
