"""The bundled character model models/shakespeare-char: its validation loss is what its card says (the whole last
10% of Tiny Shakespeare, every character scored once), and it writes the same sample for the same seed."""

import json
from pathlib import Path

import pytest
import torch

from tformer.decoding.generate import GenerationConfig
from tformer.decoding.stepwise import continue_text
from tformer.interop.language_models import load_language_model
from tformer.training.lm import LMDataConfig, windowed_loss

FOLDER = Path(__file__).resolve().parents[2] / "models" / "shakespeare-char"
pytestmark = pytest.mark.skipif(not (FOLDER / "model.safetensors").is_file(), reason="no bundled shakespeare-char")


@pytest.mark.slow
def test_validation_loss_is_the_cards():
    model, tokenizer = load_language_model("shakespeare-char")
    data = LMDataConfig()
    text = data.path().read_text(encoding="utf-8")
    loss = windowed_loss(model, torch.tensor(tokenizer.encode(text[data.cut(text):])))  # float32
    card = json.loads((FOLDER / "results.json").read_text())
    assert loss == pytest.approx(card["val_loss"], abs=0.01)  # the card's figure was measured under bf16 autocast


def test_the_same_seed_writes_the_same_sample():
    model, tokenizer = load_language_model("shakespeare-char")
    config = GenerationConfig(max_new_tokens=60, temperature=0.8, top_k=40, seed=1)

    def sample() -> str:
        return "".join(p for p, _ in continue_text(model, tokenizer, tokenizer.encode("ROMEO:"), config))

    first = sample()
    assert first == sample() and len(first) > 20
