"""`tformer embed`: .npy and JSON lines outputs, row i for line i, equal to SentenceEncoder."""

import json

import numpy as np
import pytest
import torch

from tformer.cli.main import main
from tformer.models.pipelines import SentenceEncoder

from tests.models.bert_helpers import save_tiny_encoder

TEXTS = ["the movie was great", "", "a dull , boring story that goes on and on"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return save_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def test_npy_and_jsonl_hold_one_normalised_row_per_line(encoder_dir, tmp_path):
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    expected = SentenceEncoder.from_pretrained(encoder_dir).encode(TEXTS)
    assert main(["embed", "--input", str(tmp_path / "texts.txt"), "--out", str(tmp_path / "x.npy"),
                 "--model", str(encoder_dir)]) == 0
    array = np.load(tmp_path / "x.npy")
    assert array.shape == (3, 24) and array.dtype == np.float32
    assert np.abs(array - expected.numpy()).max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)
    assert main(["embed", "--input", str(tmp_path / "texts.txt"), "--out", str(tmp_path / "x.jsonl"),
                 "--model", str(encoder_dir), "--batch-size", "2"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    assert (torch.tensor([r["embedding"] for r in rows]) - expected).abs().max() < 1e-6


def test_unknown_output_format_is_refused(encoder_dir, tmp_path, capsys):
    (tmp_path / "texts.txt").write_text("hello\n")
    assert main(["embed", "--input", str(tmp_path / "texts.txt"), "--out", str(tmp_path / "x.csv"),
                 "--model", str(encoder_dir)]) == 1
    assert "--out must end in .npy or .jsonl" in capsys.readouterr().err


def test_text_arguments_print_json_lines_and_stdin_works_too(encoder_dir, capsys, monkeypatch):
    import io

    expected = SentenceEncoder.from_pretrained(encoder_dir).encode(["Hello world", "Hallo Welt"])
    assert main(["embed", "Hello world", "Hallo Welt", "--model", str(encoder_dir)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["Hello world", "Hallo Welt"]
    assert (torch.tensor([r["embedding"] for r in rows]) - expected).abs().max() < 1e-6
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"Hello world\nHallo Welt\n")))
    assert main(["embed", "--model", str(encoder_dir)]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows


def test_the_count_is_singular_for_one_embedding(encoder_dir, tmp_path, capsys):
    assert main(["embed", "Hello world", "--model", str(encoder_dir), "--out", str(tmp_path / "x.npy")]) == 0
    assert "wrote 1 embedding of dimension 24" in capsys.readouterr().err
    assert main(["embed", "a", "b", "--model", str(encoder_dir), "--out", str(tmp_path / "x.npy")]) == 0
    assert "wrote 2 embeddings of dimension 24" in capsys.readouterr().err
