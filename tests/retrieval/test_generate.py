"""The grounded prompt: the instruction, every passage numbered with its source, the question; `ask --generate`
prints the reply and numbers its sources the way the prompt did."""

import pytest

from tformer.cli.main import main
from tformer.retrieval import generate as grounded
from tformer.retrieval.index import Hit


def hit(i, text):
    return Hit(i, 1.0, text, f"doc{i}.txt", "", 0, len(text))


def test_messages_number_the_passages_and_end_with_the_question():
    hits = [hit(1, "Paris is in France."), hit(2, "Rome is in Italy.")]
    system, user = grounded.grounded_messages("Where is Rome?", hits)
    assert system["role"] == "system" and "only the numbered passages" in system["content"]
    assert "[1] (doc1.txt) Paris is in France." in user["content"]
    assert "[2] (doc2.txt) Rome is in Italy." in user["content"]
    assert user["content"].rstrip().endswith("Question: Where is Rome?")
    with pytest.raises(ValueError, match="empty"):
        grounded.grounded_messages(" ", hits)


def test_ask_generate_prints_the_reply_and_its_numbered_sources(tmp_path, monkeypatch, capsys):
    from tests.cli.test_qa_cli import write_docs
    from tests.models.bert_helpers import save_tiny_encoder

    encoder = save_tiny_encoder(tmp_path / "enc")
    docs = write_docs(tmp_path / "docs")
    assert main(["index", str(docs), "--out", str(tmp_path / "i"), "--model", str(encoder)]) == 0
    seen = {}

    def fake_reply(question, passages, model, max_new_tokens):
        seen.update(question=question, passages=passages, model=model)
        return grounded.GroundedReply("It is dull [1].", list(passages))

    monkeypatch.setattr(grounded, "generate_reply", fake_reply)
    assert main(["ask", str(tmp_path / "i"), "is the plot dull", "--generate", "--passages", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("It is dull [1].") and seen["model"] == "smollm2" and len(seen["passages"]) == 2
    assert f"[1] {seen['passages'][0].source}" in out and f"[2] {seen['passages'][1].source}" in out
