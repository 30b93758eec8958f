"""tformer score-lm on a tiny train-lm style run folder: by default it scores the recipe's validation text exactly as
the trainer does; --text, --last, --context, --windows and --stride choose what is scored; bad input gets one clear
error."""

import json

import pytest
import torch

from tformer.cli.main import main
from tformer.evaluation.language_model import strided_loss, windowed_loss
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.text.chars import CharTokenizer
from tformer.training.lm import LMRecipe

TEXT = "".join(f"{who}: the {what} is {what}.\n" for who in ("ANNA", "BEN") for what in ("sun", "sea", "moon")) * 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as train-lm leaves it: recipe.json naming the corpus, the model and tokenizer in final/."""
    root = tmp_path_factory.mktemp("data")
    (root / "tiny.txt").write_text(TEXT, encoding="utf-8")
    run = tmp_path_factory.mktemp("run")
    recipe = LMRecipe.from_dict({"model": {"max_len": 12}, "data": {"root": str(root), "corpus": "tiny.txt"},
                                 "train": {"max_steps": 1}})
    (run / "recipe.json").write_text(recipe.to_json(), encoding="utf-8")
    tokenizer = CharTokenizer.from_text(TEXT)
    tokenizer.save_pretrained(run / "final")
    torch.manual_seed(0)
    config = CausalLMConfig(vocab_size=tokenizer.vocab_size, d_model=24, num_layers=1, num_heads=3, d_ff=40,
                            max_len=12, dropout=0.0, pad_id=0, bos_id=0, eos_id=0)
    CausalLM(config).save_pretrained(run / "final")
    return run


def score(capsys, *args) -> dict:
    assert main(["score-lm", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def expected(run_dir, text: str, **kwargs) -> float:
    tokenizer = CharTokenizer.from_pretrained(run_dir / "final")
    model = CausalLM.from_pretrained(run_dir / "final")
    return windowed_loss(model, torch.tensor(tokenizer.encode(text)), **kwargs)


def test_default_is_the_trainers_validation_text(run_dir, capsys):
    got = score(capsys, "--model", str(run_dir))
    validation = TEXT[int(len(TEXT) * 0.9):]
    assert got["nats_per_token"] == pytest.approx(expected(run_dir, validation), rel=1e-9)
    assert got["tokens"] == got["characters"] == (len(validation) - 1) // 12 * 12
    assert "last 10%" in got["text"] and got["context"] == 12


def test_text_last_context_and_windows_choose_what_is_scored(run_dir, tmp_path, capsys):
    path = tmp_path / "other.txt"
    path.write_text(TEXT[:300], encoding="utf-8")
    got = score(capsys, "--model", str(run_dir), "--text", str(path), "--context", "5", "--windows", "7")
    assert got["nats_per_token"] == pytest.approx(expected(run_dir, TEXT[:300], context=5, windows=7), rel=1e-9)
    assert (got["windows"], got["tokens"], got["context"]) == (7, 35, 5)
    half = score(capsys, "--model", str(run_dir), "--text", str(path), "--last", "0.5")
    assert half["nats_per_token"] == pytest.approx(expected(run_dir, TEXT[150:300]), rel=1e-9)


def test_stride_scores_overlapping_windows(run_dir, capsys):
    got = score(capsys, "--model", str(run_dir), "--stride", "4")
    validation = TEXT[int(len(TEXT) * 0.9):]
    tokenizer = CharTokenizer.from_pretrained(run_dir / "final")
    loss, tokens = strided_loss(CausalLM.from_pretrained(run_dir / "final"),
                                torch.tensor(tokenizer.encode(validation)), 4)
    assert got["nats_per_token"] == pytest.approx(loss, rel=1e-9)
    assert (got["tokens"], got["stride"], got["by_position"]) == (tokens, 4, {})
    assert main(["score-lm", "--model", str(run_dir), "--stride", "4"]) == 0
    assert "one every 4 (the last 4 of each counted)" in capsys.readouterr().out


def test_the_report_names_the_figures(run_dir, capsys):
    assert main(["score-lm", "--model", str(run_dir), "--by-position"]) == 0
    out = capsys.readouterr().out
    for word in ("nats/token", "perplexity", "nats/character", "windows of 12", "loss by position", "4-11"):
        assert word in out


def test_bad_input_gets_one_clear_error(run_dir, tmp_path, capsys):
    def error(*args) -> str:
        assert main(["score-lm", "--model", str(run_dir), *args]) != 0
        return capsys.readouterr().err

    assert "context must be in [1, 12]" in error("--context", "13")
    assert "stride must be in [1, 12]" in error("--stride", "13")
    assert "cannot be combined with --stride" in error("--stride", "4", "--by-position")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Grüße\n".encode("latin-1"))
    assert f"{bad}:1: not valid UTF-8" in error("--text", str(bad))
    assert "input file not found" in error("--text", str(tmp_path / "missing.txt"))
    short = tmp_path / "short.txt"
    short.write_text("ANNA: the", encoding="utf-8")
    assert "cannot fill one window of 12" in error("--text", str(short))
    folder = tmp_path / "bare"
    CausalLM.from_pretrained(run_dir / "final").save_pretrained(folder)
    CharTokenizer.from_pretrained(run_dir / "final").save_pretrained(folder)
    assert main(["score-lm", "--model", str(folder)]) != 0
    assert "no recipe.json" in capsys.readouterr().err
