"""Adapters (``tformer.models.adapter``): the stored parameters over a base give the fine-tuned model back (within
float16), for a classifier through ``TextClassifier.from_pretrained``; a mismatched adapter is refused whole."""

import json

import pytest
import torch

from tformer.errors import ModelFolderError
from tformer.models.adapter import ADAPTER_FILE, ADAPTER_WEIGHTS, apply_adapter, save_adapter
from tformer.models.bert import BertForSequenceClassification
from tformer.models.pipelines import TextClassifier

from tests.models.bert_helpers import save_tiny_classifier, save_tiny_encoder

TEXTS = ["the movie was great", "a dull and boring story", "i love it"]


def fine_tuned(base_folder) -> BertForSequenceClassification:
    """The base with every parameter but the word embeddings changed, as full fine-tuning with them frozen does."""
    model = BertForSequenceClassification.from_pretrained(base_folder, labels=["negative", "positive"])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "bert.embeddings.tokens.weight":
                p.add_(0.2 * torch.randn(p.shape, generator=generator))
    return model.eval()


def test_an_adapter_classifier_loads_as_the_fine_tuned_model(tmp_path):
    base = save_tiny_encoder(tmp_path / "base")
    model = fine_tuned(base)
    names = [n for n in model.state_dict() if n != "bert.embeddings.tokens.weight"]
    save_adapter(model, tmp_path / "adapter", str(base), names)
    stored = json.loads((tmp_path / "adapter" / ADAPTER_FILE).read_text())
    assert stored["base"] == str(base) and stored["config"]["labels"] == ["negative", "positive"]

    classifier = TextClassifier.from_pretrained(tmp_path / "adapter")
    assert classifier.labels == ["negative", "positive"]
    reference = TextClassifier(model, classifier.tokenizer)
    torch.testing.assert_close(classifier.predict_proba(TEXTS), reference.predict_proba(TEXTS), atol=5e-3, rtol=0)
    plain = TextClassifier(BertForSequenceClassification.from_pretrained(base, labels=["negative", "positive"]),
                           classifier.tokenizer)
    assert (classifier.predict_proba(TEXTS) - plain.predict_proba(TEXTS)).abs().max() > 0.02


def test_a_mismatched_adapter_changes_nothing(tmp_path):
    base = save_tiny_encoder(tmp_path / "base")
    save_adapter(fine_tuned(base), tmp_path / "adapter", str(base), ["classifier.weight", "bert.pooler.linear.weight"])
    wide = save_tiny_classifier(tmp_path / "wide", labels=("a", "b", "c"))
    other = BertForSequenceClassification.from_pretrained(wide)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ModelFolderError, match="classifier.weight has shape"):
        apply_adapter(other, tmp_path / "adapter")
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    (tmp_path / "adapter" / ADAPTER_WEIGHTS).unlink()
    with pytest.raises(ModelFolderError, match="adapter.safetensors is missing"):
        apply_adapter(other, tmp_path / "adapter")
    (tmp_path / "adapter" / ADAPTER_FILE).write_text("{")
    with pytest.raises(ModelFolderError, match="not a valid adapter description"):
        apply_adapter(other, tmp_path / "adapter")
