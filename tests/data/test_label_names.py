"""Label names: string labels (ham/spam) become the model's id2label and what `tformer classify` prints; files
with one class only, or dev labels unseen in training, are refused with the file named."""

import json

import pytest

from tformer.cli.main import main
from tformer.data.classification import dataset_spec, load_dataset
from tformer.data.corpus import data_dir
from tformer.errors import DataError
from tformer.training.finetune import FinetuneConfig, finetune

from tests.models.bert_helpers import save_tiny_encoder

HAM = ["i love this film", "the plot was fun", "a good story"]
SPAM = ["the movie is great and the film is great !", "love love love !", "this , that , this !"]


def write_spam_folder(folder, train_rows, dev_rows):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.tsv", train_rows), ("dev.tsv", dev_rows)):
        (folder / name).write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows))
    return folder


def test_the_sms_spam_folder_reads_with_label_names():
    folder = data_dir() / "sms-spam"
    if not folder.is_dir():
        pytest.skip("no ../shared/data/sms-spam")
    train, dev, labels = load_dataset(dataset_spec(str(folder)))
    assert labels == ["ham", "spam"]
    assert len(train) == 3974 and len(dev) == 600
    assert set(dev.labels) == {"ham", "spam"} and 0.05 < train.labels.count("spam") / len(train) < 0.25


def test_one_class_training_file_is_refused(tmp_path):
    folder = write_spam_folder(tmp_path / "d", [("ham", t) for t in HAM], [("ham", HAM[0])])
    with pytest.raises(DataError, match=r"train\.tsv: every example has the label 'ham'"):
        load_dataset(dataset_spec(str(folder)))


def test_unknown_dev_label_is_refused_with_its_line(tmp_path):
    rows = [("ham", t) for t in HAM] + [("spam", t) for t in SPAM]
    folder = write_spam_folder(tmp_path / "d", rows, [("ham", HAM[0]), ("scam", SPAM[0])])
    with pytest.raises(DataError, match=r"dev\.tsv:3: label 'scam' is not one of the labels \['ham', 'spam'\]"):
        load_dataset(dataset_spec(str(folder)))
    assert main(["finetune", "--data", str(folder), "--out", str(tmp_path / "run"), "--no-progress"]) == 1


def test_finetune_writes_label_names_and_classify_prints_them(tmp_path, capsys):
    rows = [("ham", t) for t in HAM] * 4 + [("spam", t) for t in SPAM] * 4
    folder = write_spam_folder(tmp_path / "d", rows, rows[::3])
    encoder = save_tiny_encoder(tmp_path / "encoder")
    result = finetune(FinetuneConfig(model=str(encoder), data=str(folder), out=str(tmp_path / "run"), epochs=1,
                                     batch_size=8, max_length=16, threads=1), progress=False)
    config = json.loads((result.best / "config.json").read_text())
    assert config["id2label"] == {"0": "ham", "1": "spam"} and config["label2id"] == {"ham": 0, "spam": 1}
    assert main(["classify", "--model", str(result.best), "love love love !", "a good story", "--json"]) == 0
    rows_out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["label"] in ("ham", "spam") and set(r["probabilities"]) == {"ham", "spam"} for r in rows_out)
