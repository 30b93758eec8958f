"""A model folder with a corrupt or truncated file: the command ends with one line naming the file and the
problem (exit 1), never a traceback or a JSON error that names no file."""

import re
import shutil

import pytest

from tformer.cli.main import main


@pytest.fixture
def broken_folder(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize("name, corrupt, problem", [
    ("tokenizer.json", lambda d: b"{not json", "not a valid tokenizer file"),
    ("tokenizer.json", truncated, "not a valid tokenizer file"),
    ("tokenizer.json", lambda d: b"", "not a valid tokenizer file"),
    ("config.json", lambda d: b"{not json", "not valid JSON (Expecting property name enclosed in double quotes"),
    ("config.json", truncated, "not valid JSON"),
    ("config.json", lambda d: b"[1, 2]", "expected a JSON object in it, got a JSON array"),
    ("config.json", lambda d: b"\xff\xfe{}", "not UTF-8 text"),
    ("config.json", lambda d: re.sub(rb'"d_model": \d+', b'"d_model": "x"', d), "d_model must be a positive"),
    ("generation.json", lambda d: b"{", "not valid JSON"),
    ("generation.json", lambda d: b'{"length_penalty": "long"}', "length_penalty must be a number"),
])
def test_a_corrupt_file_in_a_model_folder_is_one_line_naming_it(broken_folder, name, corrupt, problem, capsys):
    path = broken_folder / name
    path.write_bytes(corrupt(path.read_bytes()))
    assert main(["translate", "--model", str(broken_folder), "Hallo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"tformer translate: error: {path}: "), err
    assert problem in err, err
