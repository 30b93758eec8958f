"""Checkpoints on a time interval (save_every_minutes), so a run stopped before its first evaluation resumes; the
progress bar's total (and so its ETA) follows max_minutes."""

import pytest

from tformer.errors import ConfigError
from tformer.training.trainer import Trainer

from tests.training.conftest import tiny_recipe


class Killed(Exception):
    pass


def run_until_first_evaluation(recipe, out, monkeypatch) -> Trainer:
    """Train until the first evaluation would start, and stop there as a kill would."""
    def killed(self):
        raise Killed

    trainer = Trainer(recipe, out, progress=False)
    with monkeypatch.context() as m:
        m.setattr(Trainer, "_evaluate_and_save", killed)
        with pytest.raises(Killed):
            trainer.train()
    trainer.lock.release()
    return trainer


def test_a_run_stopped_before_its_first_evaluation_resumes_from_a_time_checkpoint(tmp_path, small_data_root,
                                                                                   monkeypatch):
    recipe = tiny_recipe(small_data_root, max_steps=3, eval_every=0, epochs=1, save_every_minutes=1e-9)
    run_until_first_evaluation(recipe, tmp_path / "run", monkeypatch)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "step-00000001", "step-00000002", "step-00000003"]
    resumed = Trainer(recipe, tmp_path / "run", resume=True, progress=False)
    assert resumed.state.step == 3
    resumed.train()  # the end still evaluates: the last checkpoint came from the clock, without scores
    assert resumed.state.best_bleu >= 0 and (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_without_time_checkpoints_the_same_stop_leaves_nothing(tmp_path, small_data_root, monkeypatch):
    recipe = tiny_recipe(small_data_root, max_steps=3, eval_every=0, epochs=1, save_every_minutes=0)
    run_until_first_evaluation(recipe, tmp_path / "run", monkeypatch)
    assert not any((tmp_path / "run" / "checkpoints").glob("step-*"))


def test_the_bar_total_is_where_the_time_limit_stops_the_run(tmp_path, small_data_root):
    trainer = Trainer(tiny_recipe(small_data_root, max_minutes=2.0), tmp_path / "run", progress=False)
    trainer._bar_steps, trainer._bar_from = 1000, (0, 0.0)
    trainer.state.step, trainer.state.seconds = 10, 60.0  # 10 updates a minute, one minute left
    assert trainer._expected_steps() == 20
    trainer._bar_steps = 15  # the step limit comes first
    assert trainer._expected_steps() == 15
    trainer.state.seconds = 200.0  # past the limit: no more updates expected
    assert trainer._expected_steps() == 10
    trainer.lock.release()
    with pytest.raises(ConfigError, match="save_every_minutes must be >= 0"):
        tiny_recipe(small_data_root, save_every_minutes=-1)
