"""POST /classify out of the box: a server started as `tformer serve` starts it answers with the bundled sentiment
classifier, `"model": "spam"` loads the bundled spam classifier at its first request (once), and a missing or
unknown classifier is a clear 4xx/503. Tiny LoRA classifiers stand in for the bundled ones ($TFORMER_MODELS)."""

import pytest
from fastapi.testclient import TestClient

from tformer.cli.classify import default_model
from tformer.models.classifiers import save_lora_classifier
from tformer.models.pipelines import TextClassifier
from tformer.serve.app import create_app
from tformer.serve.models import ServedModels, load_models

from tests.models.bert_helpers import random_lora_classifier, save_tiny_encoder
from tests.serve.conftest import LIMITS

TEXTS = ["the movie was great", "call now to claim your free prize", "a dull , boring story"]


def save_bundled(folder, base, labels, seed):
    """A LoRA classifier on ``base`` with random adapters and head, stored as a bundled one is."""
    model, lora = random_lora_classifier(base, labels, seed, std=0.5)
    save_lora_classifier(model, folder, base=str(base), lora=lora)


@pytest.fixture(scope="module")
def bundled_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    base = save_tiny_encoder(tmp_path_factory.mktemp("base"))
    save_bundled(root / "sst2-minilm", base, ["negative", "positive"], 1)
    save_bundled(root / "sms-spam-minilm-lora", base, ["ham", "spam"], 2)
    return root


@pytest.fixture
def served(bundled_root, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("TFORMER_MODELS", str(bundled_root))
    return load_models(tiny_model_dir, encoder=None, classifier=default_model())  # as `tformer serve` does


def predictions_of(classifier, texts):
    probs = classifier.predict_proba(texts)
    return [(classifier.labels[int(p.argmax())], float(p.max())) for p in probs]


def test_default_is_the_bundled_sentiment_classifier_and_spam_loads_once(served, monkeypatch):
    calls = []
    original = served._load_classifier
    monkeypatch.setattr(served, "_load_classifier", lambda name: calls.append(name) or original(name))
    with TestClient(create_app(served, LIMITS)) as client:
        default = client.post("/classify", json={"texts": TEXTS}).json()
        assert default["model"] == "sst2-minilm"
        assert [(p["label"], pytest.approx(p["probability"], abs=1e-6)) for p in default["predictions"]] == \
            predictions_of(TextClassifier.from_pretrained("sentiment"), TEXTS)
        named = client.post("/classify", json={"texts": TEXTS, "model": "sentiment"}).json()
        assert named == default and calls == []  # the server's own classifier, not a second copy
        for _ in range(2):
            spam = client.post("/classify", json={"texts": TEXTS, "model": "spam"})
            assert spam.status_code == 200, spam.text
        assert calls == ["spam"]
        spam = spam.json()
        assert spam["model"] == "sms-spam-minilm-lora"
        assert {tuple(p["probabilities"]) for p in spam["predictions"]} == {("ham", "spam")}
        assert [(p["label"], pytest.approx(p["probability"], abs=1e-6)) for p in spam["predictions"]] == \
            predictions_of(TextClassifier.from_pretrained("spam"), TEXTS)


def test_unknown_model_is_422_and_a_missing_bundle_503(served, bundled_root, tmp_path, monkeypatch):
    with TestClient(create_app(served, LIMITS)) as client:
        r = client.post("/classify", json={"texts": TEXTS, "model": "toxicity"})
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "model"
        monkeypatch.setenv("TFORMER_MODELS", str(tmp_path))  # the spam folder is gone
        r = client.post("/classify", json={"texts": TEXTS, "model": "spam"})
        assert r.status_code == 503 and "spam classifier cannot be loaded" in r.json()["error"], r.text


def test_a_server_without_a_classifier_still_serves_the_bundled_ones(translator, bundled_root, monkeypatch):
    monkeypatch.setenv("TFORMER_MODELS", str(bundled_root))
    with TestClient(create_app(ServedModels(translator), LIMITS)) as client:
        r = client.post("/classify", json={"texts": TEXTS})
        assert r.status_code == 503 and '"model": "sentiment"' in r.json()["error"]
        r = client.post("/classify", json={"texts": TEXTS, "model": "spam"})
        assert r.status_code == 200 and r.json()["model"] == "sms-spam-minilm-lora"
