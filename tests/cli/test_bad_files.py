"""Missing, unreadable, empty or malformed files: a non-zero exit and one line naming the file, no traceback."""

import gzip

import pytest

from tests.cli.conftest import run_cli


def _cases(tmp_path, model_dir):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "ok.de").write_text("Ein Mann.\n")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b this is not really gzip")
    (tmp_path / "bad.toml").write_text("[train\nseed = 1\n")
    (tmp_path / "wrong.toml").write_text("[train]\nseed = 'one'\nlearning_rate = 3\n")
    with gzip.open(tmp_path / "latin1.en.gz", "wb") as f:
        f.write(b"A man.\n" + "Gr\xfc\xdfe.\n".encode("latin-1"))
    m = str(model_dir)
    return {
        "missing input": (["translate", "--model", m, "--input", str(tmp_path / "nope.txt")], "nope.txt"),
        "empty input": (["translate", "--model", m, "--input", str(tmp_path / "empty.txt")], "empty.txt"),
        "input is a folder": (["translate", "--model", m, "--input", str(tmp_path)], str(tmp_path)),
        "missing model": (["translate", "--model", str(tmp_path / "no-model"), "Hallo"], "no-model"),
        "corrupt gzip": (["evaluate", "--model", m, "--src", str(tmp_path / "bad.gz"), "--ref",
                          str(tmp_path / "ok.de")], "bad.gz"),
        "not UTF-8": (["evaluate", "--model", m, "--src", str(tmp_path / "ok.de"), "--ref",
                       str(tmp_path / "latin1.en.gz")], "latin1.en.gz:2"),
        "missing recipe": (["train", "--config", str(tmp_path / "none.toml"), "--out", str(tmp_path / "r")],
                           "none.toml"),
        "broken TOML": (["train", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "r")], "bad.toml"),
        "unknown recipe field": (["train", "--config", str(tmp_path / "wrong.toml"), "--out", str(tmp_path / "r")],
                                 "learning_rate"),
        "missing curves run": (["curves", str(tmp_path / "no-run")], "no-run"),
    }


CASES = ["missing input", "empty input", "input is a folder", "missing model", "corrupt gzip", "not UTF-8",
         "missing recipe", "broken TOML", "unknown recipe field", "missing curves run"]


@pytest.mark.parametrize("case", CASES)
def test_bad_file_gives_one_clear_line(case, tmp_path, tiny_model_dir):
    args, named = _cases(tmp_path, tiny_model_dir)[case]
    result = run_cli(*args)
    err = result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in err, err
    assert named in err, err
    assert len([line for line in err.splitlines() if line.startswith("tformer")]) == 1, err
