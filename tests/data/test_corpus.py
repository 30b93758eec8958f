import gzip

import pytest

from tformer.data.corpus import read_lines, read_parallel, read_tsv_pairs, split_by_key, tatoeba
from tformer.errors import DataError


def test_plain_and_gzip_files_read_the_same(tmp_path):
    text = "Ein Mann.\nZwei Hunde.\n\nEnde\n"
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    expected = ["Ein Mann.", "Zwei Hunde.", "", "Ende"]
    assert read_lines(tmp_path / "a.txt") == read_lines(tmp_path / "a.txt.gz") == expected


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    (tmp_path / "x.de").write_text("a\nb\nc\n")
    (tmp_path / "x.en").write_text("a\nb\n")
    with pytest.raises(DataError) as err:
        read_parallel(tmp_path / "x.de", tmp_path / "x.en")
    assert "x.de has 3 lines" in str(err.value) and "x.en has 2" in str(err.value)


def test_invalid_utf8_names_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"ok\nfine\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"bad.txt:3: not valid UTF-8"):
        read_lines(tmp_path / "bad.txt")


@pytest.mark.parametrize("line", ["only one field", "a\tb\tc", "\tGerman", "English\t  "])
def test_tsv_lines_need_two_non_empty_fields(tmp_path, line):
    (tmp_path / "p.tsv").write_text(f"Hi.\tHallo!\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"p.tsv:2: expected two non-empty tab-separated fields"):
        read_tsv_pairs(tmp_path / "p.tsv")


def test_split_keeps_shared_keys_on_one_side_and_is_reproducible():
    pairs = [(f"en{i // 3}", f"de{i}") for i in range(300)]  # each English sentence has 3 translations
    split = split_by_key(pairs, n_valid=20, n_test=20)
    assert split == split_by_key(pairs, n_valid=20, n_test=20)
    assert sorted(split["train"] + split["valid"] + split["test"]) == list(range(300))
    sides = {}
    for side, ids in split.items():
        for i in ids:
            assert sides.setdefault(pairs[i][0], side) == side
    assert 20 <= len(split["valid"]) < 23 and 20 <= len(split["test"]) < 23


def test_tatoeba_split_sizes_and_disjointness():
    valid, test = tatoeba("valid"), tatoeba("test")
    assert 2000 <= len(valid) < 2050 and 2000 <= len(test) < 2050
    assert not set(valid.tgt) & set(test.tgt)  # no English sentence on two sides
