"""`tformer finetune` end to end with --max-steps: flags reach the config, the best folder is written and
`tformer classify` uses it; errors are one line."""

import json

from tformer.cli.main import main

from tests.models.bert_helpers import save_tiny_encoder, write_toy_sentiment


def test_finetune_then_classify(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    write_toy_sentiment(tmp_path / "data")
    save_tiny_encoder(tmp_path / "encoder")
    out = tmp_path / "run"
    args = ["finetune", "--model", str(tmp_path / "encoder"), "--train", str(tmp_path / "data" / "train.txt"),
            "--dev", str(tmp_path / "data" / "dev.txt"), "--out", str(out), "--max-steps", "2", "--batch-size", "8",
            "--lr", "1e-3", "--max-length", "16", "--seed", "3", "--no-progress", "--threads", "1"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"{out / 'best'}\taccuracy ")
    recipe = json.loads((out / "best" / "finetune_config.json").read_text())
    assert (recipe["max_steps"], recipe["batch_size"], recipe["lr"], recipe["seed"]) == (2, 8, 1e-3, 3)
    assert main(["classify", "--model", str(out / "best"), "a great film"]) == 0
    assert capsys.readouterr().out.split("\t")[0] in ("0", "1")
    assert main(args) == 1  # --out is not empty now
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1


def test_malformed_training_line_is_one_error_line(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("1 good\nnolabel\n")
    (tmp_path / "dev.txt").write_text("1 fine\n")
    assert main(["finetune", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("train.txt:2: expected 'LABEL TEXT', got 'nolabel'") and len(err.splitlines()) == 1
