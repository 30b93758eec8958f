"""POST /generate and POST /chat: the same text as the library, streamed as server-sent events that join to it,
4xx naming the field for bad settings, and a model loaded only when first needed."""

import json

import pytest
import torch
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from tformer.decoding.generate import GenerationConfig, generate
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.serve.app import create_app
from tformer.serve.generation import GenerationService
from tformer.serve.models import ServedModels
from tformer.text.chars import CharTokenizer
from tformer.text.chat_tokenizer import ChatTokenizer

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'][0] }}{{ m['content'] }}<|im_end|>{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>a{% endif %}")


def tiny_language_model() -> tuple[CausalLM, ChatTokenizer]:
    """A random character model (context 40) with a chat template: what the routes need of smollm2."""
    hf = Tokenizer.from_str(CharTokenizer.from_text("abcdefghij klmnop.?\nsuROMEO:").tokenizer.to_str())
    hf.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    torch.manual_seed(1)
    config = CausalLMConfig(vocab_size=hf.get_vocab_size(), d_model=24, num_layers=1, num_heads=3, d_ff=40,
                            max_len=40, dropout=0.0, pad_id=0, bos_id=0, eos_id=0)
    return CausalLM(config).eval(), ChatTokenizer(hf, TEMPLATE, {"eos": hf.token_to_id("<|im_end|>")})


class Counting:
    def __init__(self):
        self.calls = 0
        self.loaded = tiny_language_model()

    def __call__(self):
        self.calls += 1
        return self.loaded


@pytest.fixture(scope="module")
def loader():
    return Counting()


@pytest.fixture(scope="module")
def gen_client(translator, loader):
    app = create_app(ServedModels(translator), generation=GenerationService("tiny-chars", loader))
    with TestClient(app) as client:
        yield client


def events(response) -> list[tuple[str, dict]]:
    """(event name, data) of each server-sent event."""
    found = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((fields.get("event", "message"), json.loads(fields["data"])))
    return found


def test_the_model_loads_at_the_first_generation_request_only(gen_client, loader):
    gen_client.get("/health")
    gen_client.post("/translate", json={"text": "Ein Hund."})
    assert loader.calls == 0
    gen_client.post("/generate", json={"prompt": "ab"})
    gen_client.post("/generate", json={"prompt": "cd"})
    assert loader.calls == 1


def test_generate_equals_the_library_and_its_stream_joins_to_it(gen_client, loader):
    model, tokenizer = loader.loaded
    settings = {"max_new_tokens": 20, "temperature": 0.9, "top_k": 8, "seed": 3, "stop": ["p."]}
    expected = generate(model, tokenizer, ["ROMEO:"], GenerationConfig(**settings))[0]
    answer = gen_client.post("/generate", json={"prompt": "ROMEO:", **settings})
    assert answer.status_code == 200 and answer.json()["text"] == expected
    streamed = gen_client.post("/generate", json={"prompt": "ROMEO:", **settings, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    found = events(streamed)
    assert found[-1] == ("done", {"text": expected})
    assert "".join(data["text"] for name, data in found[:-1]) == expected


def test_generate_trace_gives_each_step_and_its_candidates(gen_client):
    body = gen_client.post("/generate", json={"prompt": "ab", "max_new_tokens": 5, "trace": True}).json()
    assert 1 <= len(body["steps"]) <= 5
    for step in body["steps"]:  # greedy: the chosen token is the most probable candidate
        assert step["token_id"] == step["candidates"][0]["token_id"] and len(step["candidates"]) == 5


def test_chat_answers_the_last_user_message_streamed_or_not(gen_client):
    messages = [{"role": "system", "content": "su"}, {"role": "user", "content": "ab?"}]
    plain = gen_client.post("/chat", json={"messages": messages, "max_new_tokens": 12})
    assert plain.status_code == 200
    message = plain.json()["message"]
    assert message["role"] == "assistant"
    streamed = gen_client.post("/chat", json={"messages": messages, "max_new_tokens": 12, "stream": True})
    assert events(streamed)[-1][1]["text"].strip() == message["content"]


@pytest.mark.parametrize("path, body, field", [
    ("/generate", {"prompt": "ab", "top_p": 0}, "top_p"),
    ("/generate", {"prompt": "ab", "top_p": 1.5}, "top_p"),
    ("/generate", {"prompt": "ab", "temperature": -0.5}, "temperature"),
    ("/generate", {"prompt": "ab", "max_new_tokens": -1}, "max_new_tokens"),
    ("/generate", {"prompt": "a" * 45}, "prompt"),  # longer than the context (40)
    ("/generate", {"prompt": "a" * 45, "stream": True}, "prompt"),
    ("/generate", {"prompt": "ab", "stop": [""]}, "stop"),
    ("/chat", {"messages": []}, "messages"),
    ("/chat", {"messages": [{"role": "robot", "content": "ab"}]}, "messages.0.role"),
    ("/chat", {"messages": [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "cd"}]},
     "messages"),
    ("/chat", {"messages": [{"role": "user", "content": "a" * 60}], "max_new_tokens": 4}, "messages"),
    ("/chat", {"messages": [{"role": "user", "content": "ab"}], "top_p": 2.0, "stream": True}, "top_p"),
])
def test_bad_input_is_4xx_naming_the_field(gen_client, path, body, field):
    answer = gen_client.post(path, json=body)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"].startswith(field), answer.json()


def test_a_model_that_cannot_load_is_503(translator):
    def broken():
        raise FileNotFoundError("no such file: nowhere.gguf")

    with TestClient(create_app(ServedModels(translator), generation=GenerationService("nowhere", broken))) as client:
        answer = client.post("/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 503 and "nowhere" in answer.json()["error"]
