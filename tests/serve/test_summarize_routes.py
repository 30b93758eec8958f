"""POST /summarize: the summaries the library writes (extractive with the server's encoder, abstractive with its
chat model), and a clear 4xx for every kind of bad document or option, never a 5xx."""

import json
import time

import pytest
import torch
from fastapi.testclient import TestClient

from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.serve.app import create_app
from tformer.serve.generation import GenerationService
from tformer.serve.models import ServedModels
from tformer.serve.schemas import MAX_DOCUMENT_CHARS, ServeLimits
from tformer.summarize import AbstractiveSummarizer, ExtractiveSummarizer, SentenceScorer

from tests.serve.conftest import LIMITS
from tests.serve.test_generation_routes import tiny_language_model
from tests.summarize.test_abstractive import ByteTokenizer

DOCUMENT = ("The movie was good and the plot was fun. This film is very boring. A lovely story about a dog. "
            "It is so dull and the plot is terrible. The actors were great in every scene.")


def byte_chat_model() -> tuple[CausalLM, ByteTokenizer]:
    """A random byte-level chat model with a context long enough for a summary prompt."""
    torch.manual_seed(0)
    config = CausalLMConfig.llama(vocab_size=259, d_model=24, num_layers=1, num_heads=3, num_kv_heads=1, d_ff=40,
                                  max_len=2048)
    return CausalLM(config).eval(), ByteTokenizer()


@pytest.fixture(scope="module")
def chat_model():
    return byte_chat_model()


@pytest.fixture(scope="module")
def sum_client(models, chat_model):
    app = create_app(models, LIMITS, generation=GenerationService("tiny-bytes", lambda: chat_model))
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("sentences", [1, 3])
def test_extractive_summary_is_the_librarys(sum_client, encoder, sentences):
    r = sum_client.post("/summarize", json={"text": DOCUMENT, "sentences": sentences})
    assert r.status_code == 200, r.text
    data = r.json()
    expected = ExtractiveSummarizer(encoder, SentenceScorer.from_json()).summarize(DOCUMENT, sentences)
    assert data["method"] == "extractive" and data["model"] == "tiny-bert"
    assert data["sentences"] == expected.sentences and data["indices"] == expected.indices
    assert data["indices"] == sorted(data["indices"]) and len(data["indices"]) == sentences
    assert data["summary"] == " ".join(data["sentences"]) and data["document_sentences"] == 5


def test_one_sentence_document_is_its_own_summary_with_a_note(sum_client):
    data = sum_client.post("/summarize", json={"text": "A lovely story about a dog.", "sentences": 2}).json()
    assert data["sentences"] == ["A lovely story about a dog."]
    assert any("one sentence" in note for note in data["notes"])


def test_abstractive_summary_is_the_librarys(sum_client, chat_model):
    r = sum_client.post("/summarize", json={"text": DOCUMENT, "method": "abstractive"})
    assert r.status_code == 200, r.text
    data = r.json()
    expected = AbstractiveSummarizer(*chat_model).summarize(DOCUMENT, 1)
    assert data["method"] == "abstractive" and data["model"] == "tiny-bytes" and data["indices"] is None
    assert data["sentences"] == expected.sentences and data["notes"] == expected.notes


def test_abstractive_summary_follows_the_named_instruction(sum_client, chat_model):
    data = sum_client.post("/summarize", json={"text": DOCUMENT, "method": "abstractive",
                                                "instruction": "paper"}).json()
    expected = AbstractiveSummarizer(*chat_model, instruction="paper").summarize(DOCUMENT, 1)
    assert data["sentences"] == expected.sentences and data["notes"] == expected.notes


def test_abstractive_long_document_is_summarized_in_parts(sum_client, chat_model):
    text = " ".join(f"Sentence {i} is about the plot of film number {i}." for i in range(80))  # > 1,968 bytes
    data = sum_client.post("/summarize", json={"text": text, "method": "abstractive"}).json()
    assert any("parts" in note for note in data["notes"]), data


@pytest.mark.parametrize("body, field, problem", [
    ({"text": "   "}, "text", "is blank"),
    ({"text": ""}, "text", "at least 1 character"),
    ({"text": DOCUMENT, "method": "lexrank"}, "method", "'extractive' or 'abstractive'"),
    ({"text": DOCUMENT, "sentences": 0}, "sentences", "greater than or equal to 1"),
    ({"text": DOCUMENT, "instruction": "poem"}, "instruction", "'general' or 'paper'"),
    ({"text": DOCUMENT, "sentences": "2"}, "sentences", "valid integer"),
    ({"text": "x" * (MAX_DOCUMENT_CHARS + 1)}, "text", f"at most {MAX_DOCUMENT_CHARS} characters"),
    ({"txt": DOCUMENT}, "txt", "unknown field"),
    ({}, "text", "required field is missing"),
])
def test_bad_requests_are_422_naming_the_field(sum_client, body, field, problem):
    r = sum_client.post("/summarize", json=body)
    assert r.status_code == 422, r.text
    assert any(d["field"] == field and problem in d["problem"] for d in r.json()["details"]), r.json()


def test_no_encoder_or_no_chat_model_is_503(translator):
    broken = GenerationService("tiny-chars", tiny_language_model)  # context 40: too short for a summary prompt
    app = create_app(ServedModels(translator), LIMITS, generation=broken)
    with TestClient(app) as client:
        r = client.post("/summarize", json={"text": DOCUMENT})
        assert r.status_code == 503 and "no sentence encoder" in r.json()["error"]
        r = client.post("/summarize", json={"text": DOCUMENT, "method": "abstractive"})
        assert r.status_code == 503 and "cannot write summaries" in r.json()["error"], r.text


class SlowTokenizer(ByteTokenizer):
    def encode(self, text):
        time.sleep(0.05)
        return super().encode(text)


def test_abstractive_past_the_time_limit_is_504(models):
    model, _ = byte_chat_model()
    limits = ServeLimits(**{**LIMITS.to_dict(), "request_timeout_s": 0.2})
    app = create_app(models, limits, generation=GenerationService("slow", lambda: (model, SlowTokenizer())))
    with TestClient(app) as client:
        r = client.post("/summarize", json={"text": DOCUMENT, "method": "abstractive"})
    assert r.status_code == 504 and "--request-timeout" in r.json()["error"]


def test_the_longest_document_fits_the_body_limit_of_a_small_server(models):
    limits = ServeLimits(max_chars=10, max_batch_size=1)  # a batch of texts would allow ~4 KB
    text = "\u00e9" * (MAX_DOCUMENT_CHARS - 1) + "."  # sent as \\u00e9 escapes: 6 bytes per character
    with TestClient(create_app(models, limits)) as client:
        body = json.dumps({"text": text}).encode()
        assert len(body) > 6 * MAX_DOCUMENT_CHARS
        r = client.post("/summarize", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text[:200]
