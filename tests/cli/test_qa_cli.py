"""`tformer index`, `search`, `qa` and `ask` end to end: what they print comes from the documents, updates touch
only changed files, and bad input gets one clear line (skipped files named, empty question, another model)."""

import json
import logging

import pytest

from tformer.cli.main import main
from tformer.models.bert import BertModel

from tests.models.bert_helpers import save_tiny_encoder, tiny_bert_config, write_vocab_folder
from tests.models.test_bert_qa import tiny_qa

DOCS = {
    "movies.txt": "the movie was good but the plot was dull . i love the story , it is fun and lovely .",
    "films.md": "this film is very boring and the plot is terrible . the story was great !",
}


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return save_tiny_encoder(tmp_path_factory.mktemp("encoder"))


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa")
    tiny_qa(folder)
    return folder


def write_docs(folder, docs=DOCS):
    folder.mkdir(exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_index_search_and_ask(tmp_path, encoder_dir, qa_dir, capsys, caplog):
    docs = write_docs(tmp_path / "docs")
    (docs / "bad.txt").write_bytes(b"\xff\xfe not utf-8")
    index = str(tmp_path / "index")
    with caplog.at_level(logging.WARNING, logger="tformer"):
        assert main(["index", str(docs), "--out", index, "--model", str(encoder_dir)]) == 0
    assert "bad.txt: not UTF-8" in caplog.text and "2 new" in capsys.readouterr().err
    assert main(["search", index, "terrible plot", "--top-k", "2", "--json", "--mode", "bm25"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert hits[0]["source"].endswith("films.md") and "terrible" in hits[0]["text"]
    assert main(["ask", index, "is the story fun", "--model", str(qa_dir), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    source_text = DOCS[answer["source"].rsplit("/", 1)[-1]]
    assert source_text[answer["start"]:answer["end"]] == answer["answer"]  # an exact span of its document
    # a second run re-embeds only the changed file
    (docs / "films.md").write_text("the story was great and the film was lovely .", encoding="utf-8")
    assert main(["index", str(docs), "--out", index, "--model", str(encoder_dir)]) == 0
    assert "0 new, 1 changed, 1 unchanged" in capsys.readouterr().err


def test_qa_prints_an_exact_span_of_the_context(tmp_path, qa_dir, capsys):
    context = tmp_path / "c.txt"
    context.write_text("the movie was good .\nbut the plot was dull and the story boring .\n", encoding="utf-8")
    assert main(["qa", "--context", str(context), "is the plot dull", "--model", str(qa_dir), "--json",
                 "--top-k", "3"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    text = context.read_text(encoding="utf-8").rstrip("\n")
    assert 1 <= len(answers) <= 3 and answers[0]["score"] >= answers[-1]["score"]
    for a in answers:
        assert text[a["start"]:a["end"]] == a["answer"]
        assert a["line"] == text.count("\n", 0, a["start"]) + 1


def test_bad_input_gets_one_clear_line(tmp_path, encoder_dir, qa_dir, capsys):
    context = tmp_path / "c.txt"
    context.write_text("the movie was good .", encoding="utf-8")
    assert main(["qa", "--context", str(context), "  ", "--model", str(qa_dir)]) == 1
    assert "question is empty" in capsys.readouterr().err
    long_question = " ".join(["good"] * 40)
    assert main(["qa", "--context", str(context), long_question, "--model", str(qa_dir)]) == 1
    err = capsys.readouterr().err
    assert "tokens long" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "e.txt").write_text(" \n", encoding="utf-8")
    assert main(["index", str(tmp_path / "empty"), "--out", str(tmp_path / "i0"), "--model", str(encoder_dir)]) == 1
    assert "no documents to index" in capsys.readouterr().err
    assert not (tmp_path / "i0").exists()


def test_an_index_made_by_another_model_version_is_refused(tmp_path, capsys):
    encoder = save_tiny_encoder(tmp_path / "enc")
    docs = write_docs(tmp_path / "docs")
    index = str(tmp_path / "index")
    assert main(["index", str(docs), "--out", index, "--model", str(encoder)]) == 0
    BertModel(tiny_bert_config()).save_pretrained(encoder)  # new weights in the same folder: another version
    write_vocab_folder(encoder)
    capsys.readouterr()
    assert main(["search", index, "plot", "--mode", "dense"]) == 1
    err = capsys.readouterr().err
    assert "another version" in err and len(err.strip().splitlines()) == 1
