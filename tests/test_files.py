"""tformer.files: JSON errors that name the file, and atomic writes that leave either the old file or the new one,
never a torn or empty one (a full disk included)."""

import errno
import os
from pathlib import Path

import pytest

from tformer.errors import ModelFolderError
from tformer.files import atomic_output, read_json, write_json_atomic, write_text_atomic


@pytest.mark.parametrize("content, problem", [
    (b'{"a": 1', "not valid JSON ("),
    (b"", "the file is empty"),
    (b"  \n", "the file is empty"),
    (b"[1]", "expected a JSON object in it, got a JSON array"),
    (b'"text"', "expected a JSON object in it, got a string"),
    (b"\xc3\x28{}", "not UTF-8 text"),
])
def test_read_json_names_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ModelFolderError) as err:
        read_json(path)
    assert str(err.value).startswith(f"{path}: ") and problem in str(err.value) and "\n" not in str(err.value)


def test_read_json_round_trips_what_write_json_atomic_writes(tmp_path):
    data = {"ä": [1, 2.5, None, True], "nested": {"x": "y"}}
    write_json_atomic(tmp_path / "a.json", data)
    assert read_json(tmp_path / "a.json") == data
    assert read_json(tmp_path / "a.json", dict) == data


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_full_disk_leaves_no_empty_file_and_names_the_path(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"

    def full(self, data):  # the file is created, then the disk is full before a byte is written
        self.touch()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError) as err:
        write_text_atomic(path, "x" * 100_000)
    assert err.value.errno == errno.ENOSPC and str(path) in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no zero-byte target, no leftover temporary file
