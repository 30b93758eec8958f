"""Classification data readers: formats, label sets, and errors that name file and line."""

import gzip

import pytest

from tformer.data.classification import (
    DatasetSpec,
    dataset_spec,
    label_ids,
    label_set,
    load_dataset,
    read_labelled_texts,
)
from tformer.errors import DataError


def test_label_text_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("1 a fine film\n0 dull , dull\tdull\n")
    data = read_labelled_texts(path)
    assert data.texts == ["a fine film", "dull , dull\tdull"] and data.labels == ["1", "0"]
    assert data.where(1) == f"{path}:2"


def test_glue_tsv_gz_with_header(tmp_path):
    path = tmp_path / "train.tsv.gz"
    with gzip.open(path, "wt") as f:
        f.write('sentence\tlabel\nhide new secretions "quoted" \t0\nfun \t1\n')
    data = read_labelled_texts(path)
    assert data.texts == ['hide new secretions "quoted"', "fun"] and data.labels == ["0", "1"]
    assert data.lines == [2, 3]


def test_csv_with_text_and_label_columns_in_any_order(tmp_path):
    path = tmp_path / "dev.csv"
    path.write_text('label,id,text\npositive,1,"great, really"\nnegative,2,meh\n')
    data = read_labelled_texts(path)
    assert data.texts == ["great, really", "meh"] and data.labels == ["positive", "negative"]


@pytest.mark.parametrize("name,content,where", [
    ("train.txt", "1 good\n0\n", ":2: expected 'LABEL TEXT'"),
    ("train.tsv", "sentence\tlabel\nok\t1\ntoo\tmany\tfields\n", ":3: expected 2 fields"),
    ("train.tsv", "text\tstars\nok\t1\n", ":1: the header needs"),
    ("train.csv", "text,label\n,1\n", ":2: empty text"),
])
def test_malformed_lines_are_named_by_file_and_line(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=f"{name}{where}"):
        read_labelled_texts(path)


def test_dev_label_outside_the_training_labels_names_the_line(tmp_path):
    (tmp_path / "train.txt").write_text("0 bad\n1 good\n")
    (tmp_path / "dev.txt").write_text("1 nice\n2 what\n")
    with pytest.raises(DataError, match=r"dev\.txt:2: label '2' is not one of the labels \['0', '1'\]"):
        load_dataset(dataset_spec(str(tmp_path)))


def test_label_set_order_and_renaming(tmp_path):
    assert label_set(["10", "2", "1"]) == ["1", "2", "10"]
    assert label_set(["pos", "neg"]) == ["neg", "pos"]
    (tmp_path / "train.txt").write_text("1 good\n0 bad\n")
    (tmp_path / "dev.txt").write_text("0 meh\n")
    spec = DatasetSpec(tmp_path / "train.txt", tmp_path / "dev.txt", {"0": "negative", "1": "positive"})
    train, dev, labels = load_dataset(spec)
    assert labels == ["negative", "positive"] and train.labels == ["positive", "negative"]
    assert label_ids(dev, labels) == [0]


def test_presets_point_into_the_data_folder(tmp_path):
    spec = dataset_spec("glue", root=tmp_path)
    assert spec.train == tmp_path / "sst2-glue" / "train.tsv.gz" and spec.label_names["1"] == "positive"
    with pytest.raises(DataError, match="neither a preset"):
        dataset_spec(str(tmp_path / "nothing"))
    with pytest.raises(DataError, match=r"no train\.txt/\.tsv/\.csv file \(found: nothing\)"):
        dataset_spec(str(tmp_path))
