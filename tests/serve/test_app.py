import json
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from tformer import Translator
from tformer.serve.app import create_app
from tformer.serve.models import ServedModels
from tformer.serve.schemas import ServeLimits

from tests.serve.conftest import LIMITS
from tests.serve.live import LiveServer

GERMAN = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Eine Frau liest ein Buch im Park.",
          "Kinder spielen am Strand.", "Ein Mädchen mit einem roten Hut."]


# ---- happy paths: the server answers what the library answers -------------------------------------------------

@pytest.mark.parametrize("beam", [1, 3])
def test_translate_returns_what_the_translator_returns(client, translator, beam):
    r = client.post("/translate", json={"text": GERMAN[0], "beam": beam})
    assert r.status_code == 200, r.text
    assert r.json() == {"text": GERMAN[0], "translation": translator.translate([GERMAN[0]], beam)[0], "beam": beam,
                        "trace": None, "attention": None, "texts": None, "translations": None}


def test_translate_trace_and_attention(client, translator):
    r = client.post("/translate", json={"text": GERMAN[1], "beam": 2, "trace": True, "attention": True})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["translation"] == translator.translate([GERMAN[1]], 2)[0]
    trace, attention = data["trace"], data["attention"]
    assert trace["target_tokens"][-1] == "</s>" and trace["source_tokens"][-1] == "</s>"
    assert math.isclose(sum(s["log_prob"] for s in trace["steps"]), trace["score"], abs_tol=1e-4)
    assert all(len(s["candidates"]) == 5 for s in trace["steps"])
    cfg = translator.model.config
    weights = torch.tensor(attention["weights"])
    assert attention["kind"] == "cross"
    assert attention["query_tokens"] == trace["target_tokens"] and attention["key_tokens"] == trace["source_tokens"]
    assert weights.shape == (cfg.num_decoder_layers, cfg.num_heads, len(trace["target_tokens"]),
                             len(trace["source_tokens"]))
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1], dtype=weights.dtype), atol=1e-3)


def test_translate_with_only_trace_has_no_attention(client):
    data = client.post("/translate", json={"text": GERMAN[2], "trace": True}).json()
    assert data["trace"]["steps"] and data["attention"] is None


def test_classify_returns_what_the_classifier_returns(client, classifier):
    texts = ["the movie was good", "a dull story", "i hate it"]
    r = client.post("/classify", json={"texts": texts})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model"] == "tiny-sentiment"
    expected = classifier.predict(texts)
    for got, want in zip(data["predictions"], expected, strict=True):
        assert got["label"] == want.label
        assert math.isclose(got["probability"], want.probability, abs_tol=1e-6)
        assert math.isclose(sum(got["probabilities"].values()), 1.0, abs_tol=1e-5)


def test_embed_returns_what_the_encoder_returns(client, encoder):
    texts = ["the film was great", "it is so boring"]
    r = client.post("/embed", json={"texts": texts})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model"] == "tiny-bert" and data["dimensions"] == encoder.model.config.d_model
    assert torch.allclose(torch.tensor(data["embeddings"]), encoder.encode(texts), atol=1e-6)


def test_attention_of_the_encoder(client, encoder):
    text = "the movie was good"
    r = client.post("/attention", json={"text": text, "model": "encoder"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["translation"] is None and list(data["attention"]) == ["self"]
    maps = data["attention"]["self"]
    tokens = encoder.tokenizer.tokens(text)
    assert maps["query_tokens"] == maps["key_tokens"] == tokens
    cfg = encoder.model.config
    assert torch.tensor(maps["weights"]).shape == (cfg.num_layers, cfg.num_heads, len(tokens), len(tokens))


def test_attention_of_the_translator_has_three_kinds(client, translator):
    data = client.post("/attention", json={"text": GERMAN[3], "model": "translator"}).json()
    assert data["translation"] == translator.translate([GERMAN[3]])[0]
    assert sorted(data["attention"]) == ["cross", "decoder", "self"]
    cross, decoder = data["attention"]["cross"], data["attention"]["decoder"]
    assert cross["query_tokens"] == decoder["query_tokens"]
    assert decoder["key_tokens"][0] == "<s>"


def test_health_names_models_and_versions(client, translator):
    data = client.get("/health").json()
    assert data["status"] == "ok"
    assert data["models"]["translator"]["name"] == "tiny-de-en"
    assert data["models"]["translator"]["parameters"] == sum(p.numel() for p in translator.model.parameters())
    assert all(re.fullmatch(r"[0-9a-f]{12}", m["version"]) for m in data["models"].values())
    assert data["limits"]["max_chars"] == LIMITS.max_chars


def test_the_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert 'id="translate"' in page and 'id="cross-heatmap"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//""", page)


def test_docs_work_offline(client):
    page = client.get("/docs").text
    assets = re.findall(r"""(?:src|href)=["']([^"']+\.(?:js|css))""", page)
    assert assets and all(a.startswith("/") for a in assets)
    assert all(client.get(a).status_code == 200 for a in assets)
    assert set(client.get("/openapi.json").json()["paths"]) >= {"/translate", "/classify", "/embed", "/attention",
                                                                "/health"}


# ---- bad input: 4xx with a message that names the problem, never 500 -----------------------------------------

TOO_LONG = "a" * (LIMITS.max_chars + 1)
BAD_REQUESTS = [
    ("/translate", {"text": ""}, 422, "text: String should have at least 1 character"),
    ("/translate", {"text": "   \n"}, 422, "text: is blank"),
    ("/translate", {"text": TOO_LONG}, 422, f"text: String should have at most {LIMITS.max_chars} characters"),
    ("/translate", {"text": 5}, 422, "text: Input should be a valid string"),
    ("/translate", {"text": ["Hallo"]}, 422, "text: Input should be a valid string"),
    ("/translate", {"text": "Hallo", "beam": "4"}, 422, "beam: Input should be a valid integer"),
    ("/translate", {"text": "Hallo", "beam": 0}, 422, "beam: Input should be greater than or equal to 1"),
    ("/translate", {"text": "Hallo", "beam": LIMITS.max_beam + 1}, 422, "beam: Input should be less than or equal"),
    ("/translate", {"text": "Hallo", "trace": "yes"}, 422, "trace: Input should be a valid boolean"),
    ("/translate", {"text": "Hallo", "beam_size": 4}, 422, "beam_size: unknown field"),
    ("/translate", {}, 422, "give either text (one sentence) or texts (a list)"),
    ("/translate", {"text": "Hallo", "texts": ["Hallo"]}, 422, "give either text (one sentence) or texts"),
    ("/translate", {"texts": ["Hallo"], "trace": True}, 422, "trace and attention are for one sentence"),
    ("/translate", [], 422, "body: expected a JSON object, got an array"),
    ("/classify", {"texts": []}, 422, "texts: List should have at least 1 item"),
    ("/classify", {"texts": "a movie"}, 422, "texts: Input should be a valid list"),
    ("/classify", {"texts": ["fine", 3]}, 422, "texts.1: Input should be a valid string"),
    ("/classify", {"texts": ["x"] * (LIMITS.max_batch_size + 1)}, 422, "texts: List should have at most"),
    ("/embed", {"texts": ["ok", ""]}, 422, "texts.1: String should have at least 1 character"),
    ("/embed", {"texts": ["ok", TOO_LONG]}, 422, "texts.1: String should have at most"),
    ("/embed", {"text": ["ok"]}, 422, "text: unknown field"),
    ("/attention", {"text": "the cat", "model": "gpt"}, 422, "model: Input should be 'auto', 'encoder' or"),
    ("/attention", {"text": " "}, 422, "text: is blank"),
]


@pytest.mark.parametrize("path, body, status, message", BAD_REQUESTS)
def test_bad_requests_name_the_problem(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


@pytest.mark.parametrize("content, content_type, status, message", [
    (b'{"text": "Hallo"', "application/json", 400, "body: invalid JSON"),
    (b"\xff\xfe not utf-8", "application/json", 400, "body: invalid JSON"),
    (b"", "application/json", 422, "body: the request needs a JSON body"),
    (b"text=Hallo", "application/x-www-form-urlencoded", 422, "send it with Content-Type: application/json"),
])
def test_bodies_that_are_not_json(client, content, content_type, status, message):
    r = client.post("/translate", content=content, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_a_body_larger_than_any_valid_request_is_refused_unread(client):
    r = client.post("/embed", content=b"x" * (LIMITS.max_body_bytes + 1), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and f"the limit is {LIMITS.max_body_bytes}" in r.json()["error"]
    biggest = json.dumps({"texts": ["\U0001f600" * LIMITS.max_chars] * LIMITS.max_batch_size})  # 12 bytes a char
    r = client.post("/embed", content=biggest.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_a_text_with_more_tokens_than_the_encoder_takes_is_422(client, encoder):
    text = " ".join(["a"] * (encoder.model.config.max_len + 5))
    r = client.post("/attention", json={"text": text, "model": "encoder"})
    assert r.status_code == 422 and "shorten it" in r.json()["error"]


def test_unknown_paths_and_methods_are_json_errors(client):
    assert client.get("/nowhere").json() == {"error": "Not Found"}
    r = client.get("/translate")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


def test_translate_takes_a_batch_of_texts_as_classify_and_embed_do(client, translator):
    r = client.post("/translate", json={"texts": GERMAN[:3], "beam": 2})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["texts"] == GERMAN[:3] and data["translations"] == translator.translate(GERMAN[:3], 2)
    assert data["text"] is None and data["translation"] is None


def test_attention_picks_the_translator_for_german_and_says_which_model_it_used(client):
    german = client.post("/attention", json={"text": "Ein Mann fährt Fahrrad."}).json()
    assert german["model"] == "translator" and german["translation"]
    english = client.post("/attention", json={"text": "The cat drank the milk because it was hungry."}).json()
    assert english["model"] == "encoder" and english["translation"] is None


def test_missing_models_answer_503_saying_how_to_get_one(translator):
    with TestClient(create_app(ServedModels(translator), LIMITS)) as bare:
        r = bare.post("/classify", json={"texts": ["a good film"]})
        assert r.status_code == 503 and "tformer finetune" in r.json()["error"]
        r = bare.post("/embed", json={"texts": ["a"]})
        assert r.status_code == 503 and "--encoder" in r.json()["error"]
        r = bare.post("/attention", json={"text": "the cat"})
        assert r.status_code == 503
        assert bare.get("/health").json()["models"]["classifier"] is None
        assert bare.post("/translate", json={"text": "Hallo"}).status_code == 200


# ---- concurrency, batching and a full queue -------------------------------------------------------------------

def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(models, translator):
    texts = [f"{GERMAN[i % 5]} {'Ja.' * (i // 5)}" for i in range(12)]
    expected = {t: translator.translate([t], 1)[0] for t in texts}
    with TestClient(create_app(models, ServeLimits(max_batch_size=16, max_wait_ms=100))) as c:
        start = threading.Barrier(len(texts))

        def one(text):
            start.wait()
            return c.post("/translate", json={"text": text, "beam": 1}).json()

        with ThreadPoolExecutor(len(texts)) as pool:
            answers = list(pool.map(one, texts))
        stats = c.get("/health").json()["batching"]
    assert [(a["text"], a["translation"]) for a in answers] == [(t, expected[t]) for t in texts]
    assert stats["requests"] == len(texts) and stats["largest_call"] > 1


class SlowTranslator(Translator):
    """Holds every model call until ``release`` is set."""

    def __init__(self, translator: Translator):
        super().__init__(translator.model, translator.tokenizer)
        self.started, self.release = threading.Event(), threading.Event()

    def translate(self, texts, *args, **kwargs):
        self.started.set()
        assert self.release.wait(30)
        return super().translate(texts, *args, **kwargs)


def test_a_full_queue_answers_503_at_once(translator):
    slow = SlowTranslator(translator)
    app = create_app(ServedModels(slow), ServeLimits(max_batch_size=1, max_queue=1, max_wait_ms=0))
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        held = pool.submit(c.post, "/translate", json={"text": "Erster"})
        assert slow.started.wait(10)  # the worker holds the first request
        queued = pool.submit(c.post, "/translate", json={"text": "Zweiter"})
        deadline = time.monotonic() + 10
        while app.state.batcher.queue.qsize() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        r = c.post("/translate", json={"text": "Dritter"})
        refused_after = time.monotonic() - t0
        slow.release.set()
        assert held.result(30).status_code == 200 and queued.result(30).status_code == 200
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "busy" in r.json()["error"]
    assert refused_after < 1.0


def test_a_real_uvicorn_server(models, translator):
    with LiveServer(create_app(models, LIMITS)) as url:
        health = httpx.get(f"{url}/health", timeout=30)
        r = httpx.post(f"{url}/translate", json={"text": GERMAN[4], "beam": 2}, timeout=60)
        bad = httpx.post(f"{url}/translate", content=b"{", headers={"Content-Type": "application/json"}, timeout=30)
        page = httpx.get(url + "/", timeout=30)
    assert health.status_code == 200 and health.json()["models"]["translator"]["name"] == "tiny-de-en"
    assert r.status_code == 200 and r.json()["translation"] == translator.translate([GERMAN[4]], 2)[0]
    assert bad.status_code == 400 and "invalid JSON" in bad.json()["error"]
    assert page.status_code == 200 and "<title>tformer" in page.text
