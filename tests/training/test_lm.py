"""The language-model trainer (training/lm.py): the schedule's shape, data order as a function of the step, exact
resume, learning on a tiny text, the recipe file of the bundled model, and the command line."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tformer.cli.main import main
from tformer.errors import ConfigError, DataError
from tformer.evaluation.language_model import loss_by_position, windowed_loss
from tformer.models.causal_lm import CausalLM
from tformer.training.lm import LMRecipe, LMTrainer, cosine_lr_factor, scheduled_dropout
from tformer.training.trainer import TrainingError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def text_root(tmp_path_factory):
    """A data folder holding a small, very regular text (a model learns it in a few dozen updates)."""
    root = tmp_path_factory.mktemp("lmdata")
    lines = [f"{name}: the {word} is {word}.\n" for name in ("ANNA", "BEN", "CLEO") for word in ("sun", "moon", "sea")]
    (root / "tiny.txt").write_text("".join(lines) * 60, encoding="utf-8")
    return root


def recipe(root, **train) -> LMRecipe:
    return LMRecipe.from_dict({
        "model": {"d_model": 24, "num_layers": 2, "num_heads": 3, "d_ff": 40, "max_len": 17, "dropout": 0.1},
        "data": {"root": str(root), "corpus": "tiny.txt"},
        "train": {"batch_size": 8, "warmup_steps": 3, "max_steps": 6, "eval_every": 3, "threads": 1,
                  "peak_lr": 3e-3, **train},
    })


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    warm = [cosine_lr_factor(0.0, s, 10, 0.1) for s in range(10)]
    assert warm == pytest.approx([(s + 1) / 10 for s in range(10)])
    after = [cosine_lr_factor(p / 20, 10, 10, 0.1) for p in range(21)]
    assert after[0] == pytest.approx(1.0) and after[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert after[10] == pytest.approx(0.1 + 0.9 * 0.5)  # half way: half way between peak and floor


def test_late_dropout_moves_every_dropout_module_along_its_line(text_root, tmp_path):
    assert scheduled_dropout(0.2, None, 0.7) == 0.2
    assert [scheduled_dropout(0.2, 0.4, p) for p in (-1.0, 0.0, 0.5, 1.0, 2.0)] == pytest.approx(
        [0.2, 0.2, 0.3, 0.4, 0.4])
    trainer = LMTrainer(recipe(text_root, max_steps=4, final_dropout=0.5), tmp_path / "run", progress=False)
    model = trainer.model
    modules = [model.dropout, *(layer.dropout for layer in model.layers)]  # after the embedding, residual branches
    inner = [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and all(m is not r for r in modules)]
    seen, update = [], trainer._update

    def recording_update(inputs, targets):
        seen.append(sorted({m.p for m in modules}))
        return update(inputs, targets)

    trainer._update = recording_update
    trainer.train()
    assert seen == [[pytest.approx(0.1 + 0.4 * s / 4)] for s in range(4)]  # model dropout 0.1 -> 0.5 over 4 updates
    assert inner and all(m.p == 0.0 for m in inner)  # the feed-forward's inner dropout keeps its own rate
    assert model.config.dropout == 0.1
    for bad in (1.0, -0.1, "0.3"):
        with pytest.raises(ConfigError, match="final_dropout"):
            recipe(text_root, final_dropout=bad)


def test_recipe_needs_an_end_and_known_tables(text_root):
    with pytest.raises(ConfigError, match="max_steps or train.max_minutes"):
        recipe(text_root, max_steps=0)
    with pytest.raises(ConfigError, match="unknown table"):
        LMRecipe.from_dict({"tokenizer": {}})


LM_RECIPES = sorted(p.name for p in (REPO / "recipes").glob("shakespeare_char*.toml"))


def test_the_language_model_recipes_are_all_found():
    assert {"shakespeare_char.toml", "shakespeare_char_60_ema.toml", "shakespeare_char_muon_probe.toml"} <= set(
        LM_RECIPES)


@pytest.mark.parametrize("name", LM_RECIPES)
def test_bundled_recipe_parses(name):
    r = LMRecipe.from_file(REPO / "recipes" / name)
    assert r.data.corpus == "tinyshakespeare/input.txt" and r.data.validation_fraction == 0.1
    assert r.train.max_minutes > 0 or r.train.max_steps > 0


def test_batches_depend_on_seed_and_step_only(text_root, tmp_path):
    trainer = LMTrainer(recipe(text_root), tmp_path / "a", progress=False)
    x3, y3 = trainer.batch(3)
    assert torch.equal(x3, trainer.batch(3)[0]) and not torch.equal(x3, trainer.batch(4)[0])
    assert torch.equal(x3[:, 1:], y3[:, :-1])  # targets are the inputs shifted by one character
    trainer.lock.release()
    other = LMTrainer(recipe(text_root), tmp_path / "b", progress=False)
    assert torch.equal(other.batch(3)[0], x3)
    other.lock.release()


def each_window(trainer: LMTrainer) -> torch.Tensor:
    """(windows, max_len): every validation window scored on its own, every position's loss kept."""
    model, ids, context = trainer.model.eval(), trainer.val_ids, trainer.model.config.max_len
    with torch.no_grad():
        return torch.stack([torch.nn.functional.cross_entropy(model(ids[i * context : (i + 1) * context][None])[0],
                                                              ids[i * context + 1 : (i + 1) * context + 1],
                                                              reduction="none")
                            for i in range((len(ids) - 1) // context)])


def test_windowed_loss_is_the_mean_over_whole_windows(text_root, tmp_path):
    trainer = LMTrainer(recipe(text_root), tmp_path / "run", progress=False)
    trainer.lock.release()
    model, ids, context = trainer.model.eval(), trainer.val_ids, trainer.model.config.max_len
    each = each_window(trainer).mean(1).tolist()  # the batched mean must be the mean of these
    count = len(each)
    assert windowed_loss(model, ids, batch_size=2) == pytest.approx(sum(each) / count, rel=1e-5)
    assert windowed_loss(model, ids, windows=2) == pytest.approx(sum(each[:2]) / 2, rel=1e-5)
    assert trainer.validation_loss(windows=0) == pytest.approx(sum(each) / count, rel=1e-5)
    with pytest.raises(DataError, match="one window"):
        windowed_loss(model, ids[:context])


def test_loss_by_position_is_each_positions_mean_over_windows(text_root, tmp_path):
    trainer = LMTrainer(recipe(text_root), tmp_path / "run", progress=False)
    trainer.lock.release()
    model, ids, context = trainer.model.eval(), trainer.val_ids, trainer.model.config.max_len
    each = each_window(trainer)  # (windows, max_len)
    by_position = loss_by_position(model, ids, batch_size=3)
    assert by_position.shape == (context,)
    assert torch.allclose(by_position.float(), each.mean(0), rtol=1e-5, atol=1e-6)
    assert torch.allclose(loss_by_position(model, ids, windows=2).float(), each[:2].mean(0), rtol=1e-5, atol=1e-6)
    assert float(by_position.mean()) == pytest.approx(windowed_loss(model, ids), rel=1e-9)


def test_split_is_the_first_ninety_percent(text_root, tmp_path):
    trainer = LMTrainer(recipe(text_root), tmp_path / "run", progress=False)
    text = (text_root / "tiny.txt").read_text()
    cut = int(len(text) * 0.9)
    assert trainer.tokenizer.decode(trainer.train_ids.tolist()) == text[:cut]
    assert trainer.tokenizer.decode(trainer.val_ids.tolist()) == text[cut:]
    trainer.lock.release()


def train_then_resume(text_root, tmp_path, **train) -> tuple[Path, Path]:
    """A whole 6-update run, and a copy of it cut back to update 3's checkpoint (as if killed right after it) and
    resumed; returns both folders."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    LMTrainer(recipe(text_root, **train), whole, progress=False).train()
    shutil.copytree(whole, resumed)
    for name in ("best", "final", "checkpoints/step-00000006"):
        shutil.rmtree(resumed / name)
    LMTrainer(recipe(text_root, **train), resumed, resume=True, progress=False).train()
    return whole, resumed


def assert_same_files(a: Path, b: Path, *names: str) -> None:
    for name in names:
        x, y = load_file(str(a / name)), load_file(str(b / name))
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), name


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_continues_exactly(text_root, tmp_path, optimizer):
    whole, resumed = train_then_resume(text_root, tmp_path, optimizer=optimizer)
    step = "checkpoints/step-00000006"
    assert_same_files(whole / step, resumed / step, "model.safetensors")


def test_weight_average_follows_its_formula_and_resumes_exactly(text_root, tmp_path):
    from tformer.training.lm import EMA_FILE

    trainer = LMTrainer(recipe(text_root, ema_decay=0.5), tmp_path / "formula", progress=False)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer._update(*trainer.batch(0))  # step 0: decay min(0.5, 1/10) = 0.1
    for (name, p), average in zip(trainer.model.named_parameters(), trainer.ema.average):
        torch.testing.assert_close(average, 0.1 * before[name] + 0.9 * p.detach(), rtol=1e-6, atol=1e-7)
    trainer.ema.average = [a + 1.0 for a in trainer.ema.average]
    with trainer.evaluated_weights():  # the average is what gets evaluated and kept ...
        assert all(torch.equal(p, a) for p, a in zip(trainer.model.parameters(), trainer.ema.average))
    assert not any(torch.equal(p, a) for p, a in zip(trainer.model.parameters(), trainer.ema.average))  # ... briefly
    trainer.lock.release()
    whole, resumed = train_then_resume(text_root, tmp_path, ema_decay=0.5)
    step = "checkpoints/step-00000006"
    assert_same_files(whole / step, resumed / step, "model.safetensors", EMA_FILE)
    rows = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    best_step = min((r for r in rows if r["kind"] == "eval"), key=lambda r: r["val_loss"])["step"]
    best = load_file(str(whole / "best" / "model.safetensors"))  # best/ holds the average, not the trained weights
    average = load_file(str(whole / "checkpoints" / f"step-{best_step:08d}" / EMA_FILE))
    trained = load_file(str(whole / "checkpoints" / f"step-{best_step:08d}" / "model.safetensors"))
    shared = set(best) & set(average)
    assert len(shared) >= len(best) - 1 and all(torch.equal(best[k], average[k]) for k in shared)
    assert not all(torch.equal(best[k], trained[k]) for k in shared)
    with pytest.raises(ConfigError, match="ema_decay"):
        recipe(text_root, ema_decay=1.0)


# Muon's update has the RMS muon_rms x lr; at this tiny size and rate it needs a full-size (1.0) update to keep up.
@pytest.mark.parametrize(
    "settings", [{"optimizer": "adamw"}, {"optimizer": "muon", "muon_rms": 1.0}], ids=["adamw", "muon"]
)
def test_a_tiny_model_learns_the_text(text_root, tmp_path, settings):
    out = tmp_path / "learn"
    final = LMTrainer(recipe(text_root, max_steps=80, eval_every=40, **settings), out, progress=False).train()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    loss = [r["val_loss"] for r in rows if r["kind"] == "final"][-1]
    vocab = CausalLM.from_pretrained(final).config.vocab_size
    assert loss < 0.5 * math.log(vocab)  # well below a uniform guess over the characters
    assert (out / "samples.txt").read_text().count("---") == 3


def test_command_line_writes_model_curves_and_samples(text_root, tmp_path, capsys):
    config = tmp_path / "r.toml"
    config.write_text(
        '[model]\nd_model = 24\nnum_layers = 1\nnum_heads = 3\nd_ff = 40\nmax_len = 17\n'
        '[data]\ncorpus = "tiny.txt"\n[train]\nbatch_size = 4\nmax_steps = 4\neval_every = 2\nwarmup_steps = 2\n'
        'threads = 1\n'
    )
    out = tmp_path / "cli"
    assert main(["train-lm", "--config", str(config), "--out", str(out), "--data", str(text_root),
                 "--no-progress"]) == 0
    assert Path(capsys.readouterr().out.strip()) == out / "final"
    for name in ("final/model.safetensors", "final/tokenizer.json", "curves.png", "samples.txt", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert main(["train-lm", "--config", str(config), "--out", str(out), "--data", str(text_root)]) == 1  # no --resume


def test_optimizer_is_checked_and_a_changed_one_refuses_to_resume(text_root, tmp_path):
    with pytest.raises(ConfigError, match="train.optimizer must be one of adamw, muon, got 'sgd'"):
        recipe(text_root, optimizer="sgd")
    with pytest.raises(ConfigError, match="muon_momentum"):
        recipe(text_root, optimizer="muon", muon_momentum=1.0)
    out = tmp_path / "run"
    LMTrainer(recipe(text_root, max_steps=3), out, progress=False).train()
    with pytest.raises(TrainingError, match="does not fit train.optimizer = 'muon'"):
        LMTrainer(recipe(text_root, max_steps=6, optimizer="muon"), out, resume=True, progress=False)
