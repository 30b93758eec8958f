"""Tokenizer + BERT model + post-processing, ready for texts: sentence embeddings and text classification."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from tformer.data.batching import length_sorted_chunks
from tformer.devices import module_device, resolve_device
from tformer.models.adapter import is_adapter
from tformer.models.bert import BertForSequenceClassification, BertModel
from tformer.models.classifiers import (
    DEFAULT_CLASSIFIER,
    classifier_base_folder,
    is_lora_classifier,
    load_adapter_classifier,
    load_lora_classifier,
    resolve_classifier,
)
from tformer.pretrained import resolve_pretrained
from tformer.text.inputs import text_batch
from tformer.text.pretrained import Tokenizer

SENTENCE_CONFIG = "sentence_bert_config.json"  # sentence-transformers' file, holding max_seq_length


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Average of the real tokens' hidden states: (batch, seq, d_model), mask (batch, seq) -> (batch, d_model)."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


class _OnDevice:
    """``.device`` and ``.to(device)`` for a pipeline holding ``self.model``."""

    model: torch.nn.Module

    @property
    def device(self) -> torch.device:
        return module_device(self.model)

    def to(self, device: str | torch.device):  # noqa: ANN201  (returns self, of the subclass)
        """Move the model to ``device`` (checked: a missing GPU is a ValueError saying so); returns self."""
        self.model.to(resolve_device(device))
        return self


def _longest_first(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Chunks of input indices, longest text first, so each batch pads little (empty texts included)."""
    return length_sorted_chunks([len(t) for t in texts], batch_size, longest_first=True, skip_empty=False)


class SentenceEncoder(_OnDevice):
    """Sentence embeddings: mean of BERT's final hidden states over real tokens, L2-normalised (as
    sentence-transformers computes them for all-MiniLM-L6-v2)."""

    def __init__(self, model: BertModel, tokenizer: Tokenizer, max_length: int | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "minilm", device: str | torch.device | None = None
                        ) -> SentenceEncoder:
        """A checkpoint folder or short name; ``sentence_bert_config.json``'s ``max_seq_length`` is honoured.
        ``device``: ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"``, ``"auto"``."""
        folder = resolve_pretrained(name_or_path)
        max_length = None
        if (folder / SENTENCE_CONFIG).is_file():
            max_length = json.loads((folder / SENTENCE_CONFIG).read_text(encoding="utf-8")).get("max_seq_length")
        encoder = cls(BertModel.from_pretrained(folder), Tokenizer.from_pretrained(folder), max_length)
        return encoder.to(device) if device is not None else encoder

    @torch.no_grad()
    def encode(self, texts: str | Sequence[str], batch_size: int = 32, normalize: bool = True) -> Tensor:
        """texts -> embeddings (len(texts), d_model), float32, in input order; one string -> one (d_model,) vector."""
        texts, single = text_batch(texts)
        out = torch.empty(len(texts), self.model.config.d_model)
        for index in _longest_first(texts, batch_size):  # results go back in input order
            batch = self.tokenizer([texts[i] for i in index], max_length=self.max_length).to(self.device)
            hidden = self.model(**batch).last_hidden_state  # (batch, seq, d_model)
            pooled = mean_pool(hidden, batch.attention_mask)
            out[index] = (F.normalize(pooled, p=2, dim=-1) if normalize else pooled).float().cpu()
        return out[0] if single else out


@dataclass
class Prediction:
    label: str
    probability: float


class TextClassifier(_OnDevice):
    """A fine-tuned ``BertForSequenceClassification`` with its tokenizer: texts in, labels and probabilities out."""

    def __init__(self, model: BertForSequenceClassification, tokenizer: Tokenizer, max_length: int | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, folder: str | Path = DEFAULT_CLASSIFIER, device: str | torch.device | None = None
                        ) -> TextClassifier:
        """A folder written by ``tformer finetune`` (or any Hugging Face BERT sequence classifier), a LoRA
        classifier folder (merged on its base encoder), an adapter folder (``tformer.models.adapter``), or a
        bundled classifier's name (``sentiment``, ``spam``);
        on ``device`` (default the CPU)."""
        folder = resolve_classifier(folder)
        if is_lora_classifier(folder):
            classifier = cls(load_lora_classifier(folder), Tokenizer.from_pretrained(classifier_base_folder(folder)))
        elif is_adapter(folder):
            classifier = cls(load_adapter_classifier(folder), Tokenizer.from_pretrained(classifier_base_folder(folder)))
        else:
            classifier = cls(BertForSequenceClassification.from_pretrained(folder), Tokenizer.from_pretrained(folder))
        return classifier.to(device) if device is not None else classifier

    @property
    def labels(self) -> list[str]:
        return self.model.config.labels

    @torch.no_grad()
    def predict_proba(self, texts: str | Sequence[str], batch_size: int = 32) -> Tensor:
        """texts -> class probabilities (len(texts), num_labels), in input order; one string -> (num_labels,)."""
        texts, single = text_batch(texts)
        out = torch.empty(len(texts), len(self.labels))
        for index in _longest_first(texts, batch_size):  # results go back in input order
            batch = self.tokenizer([texts[i] for i in index], max_length=self.max_length).to(self.device)
            out[index] = torch.softmax(self.model(**batch).logits.float(), dim=-1).cpu()
        return out[0] if single else out

    def predict(self, texts: str | Sequence[str], batch_size: int = 32) -> Prediction | list[Prediction]:
        """The most probable label per text; a single string gives a single ``Prediction``."""
        batch, single = text_batch(texts)
        probs = self.predict_proba(batch, batch_size)
        best = probs.argmax(dim=-1)
        out = [Prediction(self.labels[int(k)], float(probs[i, k])) for i, k in enumerate(best)]
        return out[0] if single else out
