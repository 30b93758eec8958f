"""Stage 2 of the bundled recipe: --init-from overrides the recipe's init_from, and a missing stage 1 says how to
make it."""

import shutil
from pathlib import Path

import pytest

from tformer.cli.main import build_parser, main
from tformer.cli.train import check_init_from

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_a_missing_stage_one_names_the_command_that_makes_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # runs/multi30k-de-en/final does not exist here
    shutil.copytree(RECIPES, tmp_path / "recipes")
    status = main(["train", "--config", "recipes/multi30k_de_en_names.toml", "--out", str(tmp_path / "stage2")])
    err = capsys.readouterr().err
    assert status == 1
    assert "run stage 1 first: tformer train --config recipes/multi30k_de_en.toml --out runs/multi30k-de-en" in err
    assert not (tmp_path / "stage2").exists()


def test_init_from_on_the_command_line_overrides_the_recipe(tmp_path, monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_trainer(recipe, out, **kwargs):
        seen["init_from"] = recipe.train.init_from
        raise Stop

    monkeypatch.setattr("tformer.training.trainer.Trainer", fake_trainer)
    bundled = Path(__file__).resolve().parents[2] / "models" / "multi30k-de-en"
    args = build_parser().parse_args(["train", "--config", str(RECIPES / "multi30k_de_en_names.toml"),
                                      "--init-from", str(bundled), "--out", str(tmp_path / "run")])
    with pytest.raises(Stop):
        args.run(args)
    assert seen["init_from"] == str(bundled)


def test_a_folder_without_weights_is_named_with_what_it_lacks(tmp_path):
    (tmp_path / "run" / "final").mkdir(parents=True)
    (tmp_path / "run" / "final" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors, tokenizer.json: run the training"):
        check_init_from(tmp_path / "run" / "final", RECIPES / "multi30k_de_en_names.toml")
