"""POST /search and POST /ask: passages from the server's index, answers that are exact spans of their passage,
documents sent with the question, and clear 4xx/503 answers."""

import pytest
from fastapi.testclient import TestClient

from tformer.models.qa_pipeline import QuestionAnswerer
from tformer.retrieval.documents import Document
from tformer.retrieval.index import PassageIndex
from tformer.serve.app import create_app
from tformer.serve.qa import QAService
from tformer.text.pretrained import Tokenizer

from tests.models.bert_helpers import save_tiny_encoder, write_vocab_folder
from tests.models.test_bert_qa import tiny_qa
from tests.serve.conftest import LIMITS

DOCS = [Document("a.txt", "the movie was good but the plot was dull ."),
        Document("b.txt", "this film is very boring and the plot is terrible .")]


@pytest.fixture(scope="module")
def qa_client(models, tmp_path_factory):
    encoder = save_tiny_encoder(tmp_path_factory.mktemp("enc"))
    folder = tmp_path_factory.mktemp("idx") / "index"
    index = PassageIndex.create(folder, str(encoder))
    index.update(DOCS)
    index.close()
    reader = QuestionAnswerer(tiny_qa(), Tokenizer.from_pretrained(write_vocab_folder(tmp_path_factory.mktemp("v"))),
                              max_length=30)
    with TestClient(create_app(models, LIMITS, qa=QAService(reader, folder))) as client:
        yield client


def test_search_returns_passages_with_sources(qa_client):
    r = qa_client.post("/search", json={"query": "terrible plot", "top_k": 2, "mode": "bm25"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits[0]["source"] == "b.txt" and hits[0]["text"] == DOCS[1].text


def test_ask_answers_with_a_span_of_its_passage(qa_client):
    for body in ({"question": "is the plot dull"},
                 {"question": "is the plot dull", "documents": ["the plot was dull .", "it is fun ."]}):
        r = qa_client.post("/ask", json={**body, "top_k": 2})
        assert r.status_code == 200, r.text
        for a in r.json()["answers"]:
            assert a["passage"][a["start"]:a["end"]] == a["answer"]


def test_bad_requests_and_missing_parts(qa_client, models):
    assert qa_client.post("/ask", json={"question": "  "}).status_code == 422
    r = qa_client.post("/ask", json={"question": " ".join(["good"] * 20), "documents": ["the movie was good ."]})
    assert r.status_code == 422 and "tokens long" in r.json()["error"]
    assert qa_client.post("/search", json={"query": "x", "top_k": 0}).status_code == 422
    with TestClient(create_app(models, LIMITS)) as bare:
        r = bare.post("/search", json={"query": "plot"})
        assert r.status_code == 503 and "--index" in r.json()["error"]


def test_a_search_slower_than_the_request_timeout_is_answered_504(models):
    import dataclasses
    import time
    from types import SimpleNamespace

    service = SimpleNamespace(reader=None, index_folder="index", search=lambda *args: time.sleep(0.5) or [])
    limits = dataclasses.replace(LIMITS, request_timeout_s=0.1)
    with TestClient(create_app(models, limits, qa=service)) as client:
        r = client.post("/search", json={"query": "plot"})
        assert r.status_code == 504 and "--request-timeout" in r.json()["error"]
