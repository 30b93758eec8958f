"""LoRA classifiers stored as adapter + head: loading gives the logits of the unreduced merged model; bundled
classifiers by short name; broken folders are named."""

import json

import pytest
import torch

from tformer.errors import ModelFolderError
from tformer.models.bert import BertForSequenceClassification
from tformer.models.classifiers import (
    LORA_FILE,
    LORA_WEIGHTS,
    load_lora_classifier,
    resolve_classifier,
    save_lora_classifier,
)
from tformer.models.pipelines import TextClassifier
from tformer.nn.lora import merge_lora

from tests.models.bert_helpers import random_lora_classifier, save_tiny_encoder

LABELS = ["ham", "spam", "other"]
TEXTS = ["the movie was great", "a dull , boring story", "love love love !"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_encoder(tmp_path_factory.mktemp("base"))


def adapted_model(base, seed=0):
    """A classifier on ``base`` with LoRA on attention and feed-forward layers, adapters and head randomised."""
    return random_lora_classifier(base, LABELS, seed)


def logits(model, tokenizer):
    with torch.no_grad():
        return model(**tokenizer(TEXTS)).logits


@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-5), (torch.float16, 2e-2)])
def test_loaded_reduced_classifier_gives_the_merged_models_logits(base, tmp_path, dtype, tolerance):
    model, lora = adapted_model(base)
    stored = save_lora_classifier(model, tmp_path / "clf", base=str(base), lora=lora, dtype=dtype)
    assert all(n.endswith((".lora_a", ".lora_b")) or n.startswith(("classifier.", "bert.pooler.")) for n in stored)
    classifier = TextClassifier.from_pretrained(tmp_path / "clf")
    unmerged = logits(model, classifier.tokenizer)
    merge_lora(model)
    merged = logits(model, classifier.tokenizer)
    assert torch.allclose(merged, unmerged, atol=1e-5)
    assert classifier.labels == LABELS
    assert (logits(classifier.model, classifier.tokenizer) - merged).abs().max() < tolerance
    assert [p.label for p in classifier.predict(TEXTS)] == [LABELS[i] for i in merged.argmax(-1)]
    full_size = sum(p.numel() for p in model.parameters())
    assert (tmp_path / "clf" / LORA_WEIGHTS).stat().st_size < full_size * 4 / 2  # far less than the full model


def test_unmerged_load_matches_too(base, tmp_path):
    model, lora = adapted_model(base, seed=3)
    save_lora_classifier(model, tmp_path / "clf", base=str(base), lora=lora, dtype=torch.float32)
    loaded = load_lora_classifier(tmp_path / "clf", merge=False)
    tokenizer = TextClassifier.from_pretrained(tmp_path / "clf").tokenizer
    assert torch.allclose(logits(loaded, tokenizer), logits(model, tokenizer), atol=1e-6)


def test_broken_lora_folders_are_named(base, tmp_path):
    model, lora = adapted_model(base)
    folder = tmp_path / "clf"
    save_lora_classifier(model, folder, base=str(base), lora=lora)
    meta = json.loads((folder / LORA_FILE).read_text())
    (folder / LORA_FILE).write_text(json.dumps({k: v for k, v in meta.items() if k != "base"}))
    with pytest.raises(ModelFolderError, match="not a valid LoRA classifier"):
        load_lora_classifier(folder)
    (folder / LORA_FILE).write_text(json.dumps(meta))
    (folder / LORA_WEIGHTS).unlink()
    with pytest.raises(ModelFolderError, match="missing"):
        load_lora_classifier(folder)
    with pytest.raises(ValueError, match="no trainable LoRA"):
        save_lora_classifier(BertForSequenceClassification.from_pretrained(base, labels=LABELS), tmp_path / "x",
                             base=str(base), lora=lora)


def test_bundled_names_resolve_under_the_models_folder(base, tmp_path, monkeypatch):
    model, lora = adapted_model(base)
    save_lora_classifier(model, tmp_path / "sms-spam-minilm-lora", base=str(base), lora=lora)
    monkeypatch.setenv("TFORMER_MODELS", str(tmp_path))
    assert resolve_classifier("spam") == tmp_path / "sms-spam-minilm-lora"
    assert TextClassifier.from_pretrained("spam").labels == LABELS
    with pytest.raises(ModelFolderError, match="bundled sentiment classifier is missing"):
        resolve_classifier("sentiment")
