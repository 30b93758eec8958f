"""Tiny BERT checkpoints for tests: a hand-written WordPiece vocabulary and odd-sized configurations."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from tformer.models.bert import BertConfig, BertForSequenceClassification, BertModel
from tformer.nn.lora import LoraConfig, add_lora, train_only
from tformer.text.pretrained import Tokenizer

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a an this that it movie film story plot was is are very not so good great fun lovely brilliant bad awful "
    "dull boring terrible i love hate and but . , ! ##s ##ly ##ing"
).split()
VOCAB = SPECIAL + WORDS


def write_vocab_folder(folder: Path) -> Path:
    """A tokenizer-only folder: ``vocab.txt`` and ``tokenizer_config.json`` (uncased), as old BERT checkpoints ship."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "model_max_length": 40, "tokenizer_class": "BertTokenizer"}),
        encoding="utf-8",
    )
    return folder


def tiny_bert_config(**overrides) -> BertConfig:
    """Odd sizes, so a swapped axis fails loudly."""
    fields = dict(vocab_size=len(VOCAB), d_model=24, num_layers=2, num_heads=3, d_ff=40, max_len=40, num_segments=2,
                  dropout=0.0, attention_dropout=0.0)
    fields.update(overrides)
    return BertConfig(**fields)


def save_tiny_encoder(folder: Path, **overrides) -> Path:
    """A randomly initialised tiny BERT encoder checkpoint with its tokenizer."""
    BertModel(tiny_bert_config(**overrides)).save_pretrained(folder)
    Tokenizer.from_pretrained(write_vocab_folder(folder)).save_pretrained(folder)
    return folder


def save_tiny_classifier(folder: Path, labels=("negative", "positive"), **overrides) -> Path:
    BertForSequenceClassification(tiny_bert_config(labels=list(labels), **overrides)).save_pretrained(folder)
    Tokenizer.from_pretrained(write_vocab_folder(folder)).save_pretrained(folder)
    return folder


def random_lora_classifier(base: Path, labels, seed: int = 0, std: float = 0.1):
    """A classifier on ``base`` with rank-3 LoRA on every linear layer; the trainable parameters (adapters, pooler,
    head) get Gaussian noise of ``std``, so different seeds give different classifiers. Returns (model, lora)."""
    model = BertForSequenceClassification.from_pretrained(base, labels=list(labels))
    lora = LoraConfig(rank=3, alpha=6, targets=["all"])
    add_lora(model, lora)
    train_only(model, ("classifier.", "bert.pooler."))
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * std)
    return model.eval(), lora


POSITIVE = ["good", "great", "fun", "lovely", "brilliant"]
NEGATIVE = ["bad", "awful", "dull", "boring", "terrible"]
TEMPLATES = ["the movie was {}", "this film is very {}", "a {} story", "it is so {} and the plot , {}"]


def write_toy_sentiment(folder: Path, n_train: int = 64, n_dev: int = 32, seed: int = 0) -> Path:
    """``train.txt`` and ``dev.txt`` of ``LABEL TEXT`` lines whose label follows the sentiment words."""
    rng = random.Random(seed)
    for name, n in (("train.txt", n_train), ("dev.txt", n_dev)):
        lines = []
        for _ in range(n):
            label = rng.randrange(2)
            words = POSITIVE if label else NEGATIVE
            lines.append(f"{label} " + rng.choice(TEMPLATES).format(rng.choice(words), rng.choice(words)))
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder
