"""The bundled character model models/shakespeare-char: its validation loss is what its card says (the whole last
10% of Tiny Shakespeare, every character scored once), and it writes the same sample for the same seed. Bundles
made by scripts/bundle_lm.py (float16 weights) can join BUNDLES."""

import json
from pathlib import Path

import pytest
import torch

from tformer.decoding.generate import GenerationConfig
from tformer.decoding.stepwise import continue_text
from tformer.interop.language_models import load_language_model
from tformer.training.lm import LMDataConfig, windowed_loss

MODELS = Path(__file__).resolve().parents[2] / "models"
BUNDLES = [
    pytest.param(name, marks=pytest.mark.skipif(not (MODELS / name / "model.safetensors").is_file(),
                                                reason=f"no bundled {name}"))
    for name in ("shakespeare-char",)
]


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLES)
def test_validation_loss_is_the_cards(name):
    model, tokenizer = load_language_model(name)
    data = LMDataConfig()
    text = data.path().read_text(encoding="utf-8")
    loss = windowed_loss(model, torch.tensor(tokenizer.encode(text[data.cut(text):])))  # float32
    card = json.loads((MODELS / name / "results.json").read_text())
    assert loss == pytest.approx(card["val_loss"], abs=0.01)  # the card's figure was measured under bf16 autocast


@pytest.mark.parametrize("name", BUNDLES)
def test_the_same_seed_writes_the_same_sample(name):
    model, tokenizer = load_language_model(name)
    config = GenerationConfig(max_new_tokens=60, temperature=0.8, top_k=40, seed=1)

    def sample() -> str:
        return "".join(p for p, _ in continue_text(model, tokenizer, tokenizer.encode("ROMEO:"), config))

    first = sample()
    assert first == sample() and len(first) > 20
