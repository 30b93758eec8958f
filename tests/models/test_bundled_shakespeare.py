"""The bundled character model models/shakespeare-char: its validation loss is what its card says (the whole last
10% of Tiny Shakespeare, every character scored once), and it writes the same sample for the same seed."""

import json
from pathlib import Path

import pytest

from tformer.cli.main import main
from tformer.decoding.generate import GenerationConfig
from tformer.decoding.stepwise import continue_text
from tformer.interop.language_models import load_language_model

FOLDER = Path(__file__).resolve().parents[2] / "models" / "shakespeare-char"
pytestmark = pytest.mark.skipif(not (FOLDER / "model.safetensors").is_file(), reason="no bundled shakespeare-char")


@pytest.mark.slow
def test_validation_loss_is_the_cards(capsys):
    assert main(["score-lm", "--model", "shakespeare-char", "--json"]) == 0  # float32, the recipe's validation text
    score = json.loads(capsys.readouterr().out)
    card = json.loads((FOLDER / "results.json").read_text())
    assert score["nats_per_token"] == pytest.approx(card["val_loss"], abs=0.01)  # the card's: bf16 autocast
    assert score["context"] == json.loads((FOLDER / "config.json").read_text())["max_len"]  # its own windows
    assert score["tokens"] == score["characters"] == (111_540 - 1) // score["context"] * score["context"]
    assert score["nats_per_character"] == pytest.approx(score["nats_per_token"], rel=1e-12)


def test_the_same_seed_writes_the_same_sample():
    model, tokenizer = load_language_model("shakespeare-char")
    config = GenerationConfig(max_new_tokens=60, temperature=0.8, top_k=40, seed=1)

    def sample() -> str:
        return "".join(p for p, _ in continue_text(model, tokenizer, tokenizer.encode("ROMEO:"), config))

    first = sample()
    assert first == sample() and len(first) > 20
