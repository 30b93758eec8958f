"""`tformer classify`: one output line per input line, --json, and a one-line hint when there is no model."""

import io
import json
import sys

import pytest

from tformer.cli.main import main
from tformer.models.pipelines import TextClassifier

from tests.models.bert_helpers import save_tiny_classifier


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier"), labels=("negative", "positive"))


def test_a_text_gets_a_label_and_probability(classifier_dir, capsys):
    assert main(["classify", "I love this movie", "--model", str(classifier_dir)]) == 0
    label, probability = capsys.readouterr().out.strip().split("\t")
    expected = TextClassifier.from_pretrained(classifier_dir).predict(["I love this movie"])[0]
    assert label == expected.label and float(probability) == pytest.approx(expected.probability, abs=1e-4)


def test_stdin_lines_stay_aligned_and_blank_lines_stay_blank(classifier_dir, capsys, monkeypatch):
    lines = ["the film was great", "", "awful , boring", "   ", "fun"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(("\n".join(lines) + "\n").encode())))
    assert main(["classify", "--model", str(classifier_dir)]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == len(lines) + 1 and out[-1] == ""
    assert out[1] == "" and out[3] == ""
    assert all(row.split("\t")[0] in ("negative", "positive") for row in (out[0], out[2], out[4]))


def test_file_input_and_json(classifier_dir, tmp_path, capsys):
    (tmp_path / "texts.txt").write_text("a good story\nbad\n")
    assert main(["classify", "--model", str(classifier_dir), "--input", str(tmp_path / "texts.txt"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["a good story", "bad"]
    for r in rows:
        assert set(r["probabilities"]) == {"negative", "positive"}
        assert r["probability"] == pytest.approx(max(r["probabilities"].values()), abs=1e-6)


def test_without_a_model_it_says_in_one_line_how_to_make_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFORMER_MODELS", str(tmp_path))  # no bundled classifiers there
    assert main(["classify", "I love this movie"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "runs/sst2-minilm/best" in err and "tformer finetune" in err


def test_with_no_options_it_uses_the_bundled_sentiment_classifier(tmp_path, capsys, monkeypatch):
    """The bundle is an adapter folder (adapter.json) on a base encoder, as models/sst2-minilm is."""
    from tformer.models.adapter import save_adapter
    from tformer.models.bert import BertForSequenceClassification

    from tests.models.bert_helpers import save_tiny_encoder

    base = save_tiny_encoder(tmp_path / "base")
    model = BertForSequenceClassification.from_pretrained(base, labels=["negative", "positive"])
    save_adapter(model, tmp_path / "models" / "sst2-minilm", str(base), ["classifier.weight", "classifier.bias"])
    monkeypatch.setenv("TFORMER_MODELS", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    assert main(["classify", "I love this movie"]) == 0
    label, probability = capsys.readouterr().out.strip().split("\t")
    assert label in ("negative", "positive") and 0.5 <= float(probability) <= 1
