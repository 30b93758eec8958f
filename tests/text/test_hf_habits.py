"""Hugging Face habits: the tokenizer's return_tensors/padding/truncation/max_length, a BatchEncoding that is a
mapping model(**inputs) takes, output_attentions=True giving .attentions."""

import numpy as np
import pytest
import torch

from tformer.models.bert import BertForSequenceClassification, BertModel
from tformer.text.pretrained import BatchEncoding, Tokenizer

from tests.models.bert_helpers import save_tiny_classifier, save_tiny_encoder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def test_batch_encoding_is_a_mapping_with_attribute_access(folder):
    inputs = Tokenizer.from_pretrained(folder)("the film was great", return_tensors="pt")
    assert isinstance(inputs, dict) and isinstance(inputs, BatchEncoding)
    assert list(inputs.keys()) == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(value is getattr(inputs, key) for key, value in inputs.items())
    assert dict(**inputs).keys() == inputs.keys()
    with pytest.raises(AttributeError, match="no 'labels'"):
        _ = inputs.labels


def test_padding_truncation_and_max_length_as_in_transformers(folder):
    tokenizer = Tokenizer.from_pretrained(folder)
    texts = ["the film", "the film was great and i love it"]
    longest = tokenizer(texts, padding=True, return_tensors="pt")
    lengths = longest.attention_mask.sum(dim=1).tolist()
    assert longest.input_ids.shape == (2, max(lengths))
    assert tokenizer(texts, padding="longest").input_ids.equal(longest.input_ids)
    fixed = tokenizer(texts, padding="max_length", truncation=True, max_length=6)
    assert fixed.input_ids.shape == (2, 6) and fixed.attention_mask.sum(dim=1).tolist() == [min(n, 6) for n in lengths]
    with pytest.raises(ValueError, match="padding=True"):
        tokenizer(texts, padding=False)
    untruncated = tokenizer(texts[1], truncation=False, max_length=4)
    assert untruncated.input_ids.shape[1] == lengths[1]
    as_numpy = tokenizer(texts, return_tensors="np")
    assert isinstance(as_numpy["input_ids"], np.ndarray) and (as_numpy["input_ids"] == longest.input_ids.numpy()).all()
    with pytest.raises(ValueError, match="return_tensors"):
        tokenizer(texts, return_tensors="tf")


def test_model_call_on_the_mapping_with_output_attentions(folder, tmp_path):
    tokenizer, model = Tokenizer.from_pretrained(folder), BertModel.from_pretrained(folder).eval()
    inputs = tokenizer(["the film was great", "awful"], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, output_attentions=True)
        plain = model(**inputs)
    assert len(outputs.attentions) == model.config.num_layers
    batch, seq = inputs.input_ids.shape
    assert outputs.attentions[0].shape == (batch, model.config.num_heads, seq, seq)
    torch.testing.assert_close(outputs.attentions[0].sum(-1), torch.ones(batch, model.config.num_heads, seq))
    assert plain.attentions is None
    torch.testing.assert_close(outputs.last_hidden_state, plain.last_hidden_state)
    save_tiny_classifier(tmp_path)
    classifier = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        out = classifier(**tokenizer(["awful"], return_tensors="pt"), output_attentions=True, labels=torch.tensor([1]))
    assert len(out.attentions) == classifier.config.num_layers and out.loss is not None


def test_num_labels_names_the_classes_as_transformers_does(folder):
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=3)
    assert model.config.labels == ["LABEL_0", "LABEL_1", "LABEL_2"]
    with pytest.raises(ValueError, match="num_labels=2 but 3 labels"):
        BertForSequenceClassification.from_pretrained(folder, labels=["a", "b", "c"], num_labels=2)
