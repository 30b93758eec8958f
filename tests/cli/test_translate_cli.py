import pytest

from tests.cli.conftest import run_cli


def test_stdin_gives_one_output_line_per_input_line(tiny_model_dir):
    lines = ["Ein Mann fährt Fahrrad.", "", "   ", "Zwei Hunde 🐕 spielen.", "x " * 400, "Ende."]
    result = run_cli("translate", "--model", str(tiny_model_dir), "--beam", "2",
                     stdin=("\n".join(lines) + "\n").encode())
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode().split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines)
    assert out[1] == "" and out[2] == ""  # empty and blank lines keep their place
    assert result.stderr.decode().count("truncated") == 1  # the over-long line: one warning


def test_invalid_utf8_is_an_error_naming_the_line(tiny_model_dir):
    result = run_cli("translate", "--model", str(tiny_model_dir), stdin=b"Hallo\nkaputt \xc3\x28 hier\n")
    assert result.returncode == 1
    assert b"<stdin>:2: not valid UTF-8" in result.stderr
    assert b"Traceback" not in result.stderr


def test_missing_model_files_are_named(tmp_path, tiny_model_dir):
    (tmp_path / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    result = run_cli("translate", "--model", str(tmp_path), "Hallo")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "missing model.safetensors, tokenizer.json" in err and "found: config.json" in err
    assert "Traceback" not in err


def test_evaluate_prints_bleu_with_signature(tmp_path, tiny_model_dir):
    (tmp_path / "src.de").write_text("Ein Mann.\nZwei Hunde.\n")
    (tmp_path / "ref.en").write_text("A man.\nTwo dogs.\n")
    result = run_cli("evaluate", "--model", str(tiny_model_dir), "--src", str(tmp_path / "src.de"),
                     "--ref", str(tmp_path / "ref.en"), "--beam", "1", "--json")
    assert result.returncode == 0, result.stderr
    import json

    scores = json.loads(result.stdout)
    assert scores["sentences"] == 2 and "nrefs:1|case:mixed|eff:no|tok:13a" in scores["bleu_signature"]
    (tmp_path / "ref.en").write_text("A man.\n")
    bad = run_cli("evaluate", "--model", str(tiny_model_dir), "--src", str(tmp_path / "src.de"),
                  "--ref", str(tmp_path / "ref.en"))
    assert bad.returncode == 1 and b"line counts differ" in bad.stderr


@pytest.mark.parametrize("command", ["translate", "evaluate", "train"])
def test_every_subcommand_explains_itself(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0 and len(result.stdout) > 300


def test_output_writes_the_lines_to_a_file_and_says_so(tiny_model_dir, tmp_path):
    lines = ["Ein Mann fährt Fahrrad.", "", "Ende."]
    stdin = ("\n".join(lines) + "\n").encode()
    printed = run_cli("translate", "--model", str(tiny_model_dir), "--beam", "2", stdin=stdin)
    out = tmp_path / "en.txt"
    written = run_cli("translate", "--model", str(tiny_model_dir), "--beam", "2", "--output", str(out), stdin=stdin)
    assert written.returncode == 0, written.stderr
    assert written.stdout == b"" and out.read_bytes() == printed.stdout
    assert f"wrote 3 translations to {out}" in written.stderr.decode()


def test_evaluate_progress_bar_is_on_stderr_only_when_asked_or_on_a_terminal(tmp_path, tiny_model_dir):
    (tmp_path / "src.de").write_text("Ein Mann.\n\nZwei Hunde.\n")
    (tmp_path / "ref.en").write_text("A man.\n\nTwo dogs.\n")
    files = ["--model", str(tiny_model_dir), "--src", str(tmp_path / "src.de"), "--ref", str(tmp_path / "ref.en"),
             "--beam", "1", "--json"]
    quiet = run_cli("evaluate", *files)  # stderr is a pipe here: no bar
    shown = run_cli("evaluate", *files, "--progress")
    off = run_cli("evaluate", *files, "--no-progress")
    assert quiet.returncode == shown.returncode == off.returncode == 0
    assert b"translating" not in quiet.stderr and b"translating" not in off.stderr
    assert b"translating" in shown.stderr and b"3/3" in shown.stderr  # the empty line counts as done
    assert quiet.stdout.split(b'"seconds"')[0] == shown.stdout.split(b'"seconds"')[0]  # stdout untouched


def test_progress_reaches_the_number_of_inputs():
    from tests.decoding.tiny import SENTENCES, tiny_translator

    done = []
    tiny_translator().translate([*SENTENCES, ""], beam=2, batch_size=2, progress=done.append)
    assert sum(done) == len(SENTENCES) + 1


def test_precision_flag_takes_the_three_precisions_and_rejects_others(tiny_model_dir):
    from tformer.models.seq2seq import PRECISIONS

    lines = ["Ein Mann fährt Fahrrad.", "", "Zwei Hunde spielen."]
    for precision in PRECISIONS:
        result = run_cli("translate", "--model", str(tiny_model_dir), "--precision", precision, "--beam", "2",
                         stdin=("\n".join(lines) + "\n").encode())
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.decode().split("\n")) == len(lines) + 1
    result = run_cli("translate", "--model", str(tiny_model_dir), "--precision", "float16", "Hallo")
    assert result.returncode == 2 and b"invalid choice: 'float16'" in result.stderr


def test_evaluate_takes_the_same_precisions(tmp_path, tiny_model_dir):
    from tformer.cli.options import PRECISIONS as CLI_PRECISIONS
    from tformer.models.seq2seq import PRECISIONS

    assert CLI_PRECISIONS == PRECISIONS  # the CLI's copy, kept free of the torch import
    (tmp_path / "src.de").write_text("Ein Mann.\nZwei Hunde.\n")
    (tmp_path / "ref.en").write_text("A man.\nTwo dogs.\n")
    result = run_cli("evaluate", "--model", str(tiny_model_dir), "--src", str(tmp_path / "src.de"),
                     "--ref", str(tmp_path / "ref.en"), "--beam", "1", "--precision", "int8", "--json")
    assert result.returncode == 0, result.stderr
