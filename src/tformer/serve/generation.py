"""Text generation over HTTP: ``POST /generate`` (continue a prompt) and ``POST /chat`` (answer a conversation),
answered as one JSON object, or streamed as server-sent events with ``"stream": true``; and the abstractive
summaries of ``POST /summarize``, written by the same model.

``GenerationService`` loads its language model at the first request (the default, smollm2, takes seconds; a server
that never generates never pays for it); one lock keeps generations one at a time, each in a worker thread. A
streamed answer is a sequence of ``data: {"text": piece}`` events, then ``event: done`` with the whole text; a
setting or prompt the model cannot take is refused (4xx naming the field) before the stream starts.
"""

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tformer.decoding.chat import chat_prompt_ids, end_ids
from tformer.decoding.generate import GenerationConfig
from tformer.decoding.stepwise import check_prompt, continue_text
from tformer.errors import TformerError
from tformer.interop.language_models import DEFAULT_CHAT_MODEL, load_language_model
from tformer.serve.schemas import ErrorResponse, ServeLimits, without_bom
from tformer.summarize.abstractive import AbstractiveSummarizer
from tformer.summarize.sentences import split_sentences

ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 503)}
MAX_NEW_TOKENS = 1024


class GenerationService:
    """A causal language model, loaded on first use by ``loader`` (default: ``load_language_model(model)``)."""

    def __init__(self, model: str | Path = DEFAULT_CHAT_MODEL, loader: Callable[[], tuple[Any, Any]] | None = None):
        self.name = str(model)
        self._loader = loader or (lambda: load_language_model(model))
        self._loaded: tuple[Any, Any] | None = None
        self._load_lock, self.lock = threading.Lock(), threading.Lock()

    def load(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``; a model that cannot be loaded is a 503 naming it."""
        with self._load_lock:
            if self._loaded is None:
                try:
                    self._loaded = self._loader()
                except (TformerError, OSError, ImportError, ValueError) as err:
                    raise HTTPException(503, f"the language model {self.name!r} cannot be loaded: {err}") from None
            return self._loaded

    @property
    def loaded(self) -> bool:
        return self._loaded is not None


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Sampling(_Request):
    max_new_tokens: int = Field(64, ge=0, le=MAX_NEW_TOKENS)
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0, le=1)
    repetition_penalty: float = Field(1.0, gt=0)
    stop: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field([], max_length=8)
    seed: int | None = Field(None, ge=0)
    stream: bool = Field(False, description="answer as server-sent events: text pieces as they are generated")

    def config(self, eos_ids: list[int] | None = None) -> GenerationConfig:
        return GenerationConfig(self.max_new_tokens, self.temperature, self.top_k, self.top_p,
                                self.repetition_penalty, list(self.stop), eos_ids, self.seed)


class Message(_Request):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, AfterValidator(without_bom)]


class GenerateResponse(BaseModel):
    model: str
    prompt: str
    text: str
    steps: list[dict[str, Any]] | None = None


class ChatResponse(BaseModel):
    model: str
    message: Message


def add_generation_routes(app: FastAPI, service: GenerationService, limits: ServeLimits) -> None:
    """``POST /generate`` and ``POST /chat`` on ``service``'s model."""
    text_field = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_chars * 8),
                           AfterValidator(without_bom)]

    class GenerateRequest(Sampling):
        prompt: text_field = Field(examples=["ROMEO:"])
        trace: bool = Field(False, description="also return every step's token and top candidates (not streamed)")

    class ChatRequest(Sampling):
        messages: list[Message] = Field(min_length=1, max_length=64, examples=[[
            {"role": "user", "content": "What is the capital of France?"}]])
        max_new_tokens: int = Field(256, ge=0, le=MAX_NEW_TOKENS)

    @app.post("/generate", response_model=GenerateResponse, responses=ERRORS, summary="Continue a prompt")
    async def generate_route(request: GenerateRequest) -> Any:
        """The model's continuation of `prompt` (`trace`: with each step's top candidates)."""
        model, tokenizer = await asyncio.to_thread(service.load)
        config = request.config()
        ids = tokenizer.encode(request.prompt)
        refuse_unless(lambda: check_prompt(model, ids), "prompt")
        pieces = continue_text(model, tokenizer, ids, config, top=5 if request.trace else 0)
        if request.stream:
            return event_stream(service, pieces)
        text, steps = await asyncio.to_thread(collect, service, pieces)
        trace = [{"t": s.t, "token_id": s.token_id, "token": tokenizer.decode([s.token_id]), "prob": s.prob,
                  "candidates": [{"token_id": i, "prob": p} for i, p in s.candidates]} for s in steps]
        return {"model": service.name, "prompt": request.prompt, "text": text,
                "steps": trace if request.trace else None}

    @app.post("/chat", response_model=ChatResponse, responses=ERRORS, summary="Answer a conversation")
    async def chat_route(request: ChatRequest) -> Any:
        """The assistant's next message after `messages` (role/content, the last one the user's)."""
        model, tokenizer = await asyncio.to_thread(service.load)
        messages = [m.model_dump() for m in request.messages]
        ids = refuse_unless(lambda: chat_prompt_ids(model, tokenizer, messages, request.max_new_tokens), "messages")
        pieces = continue_text(model, tokenizer, ids, request.config(end_ids(model, tokenizer)), slide=False)
        if request.stream:
            return event_stream(service, pieces)
        text, _ = await asyncio.to_thread(collect, service, pieces)
        return {"model": service.name, "message": {"role": "assistant", "content": text.strip()}}


def refuse_unless(check: Callable[[], Any], field: str) -> Any:
    """``check()``'s result; a ValueError from it is a 422 naming ``field`` (a prompt longer than the context...)."""
    try:
        return check()
    except (ValueError, TformerError) as err:
        raise HTTPException(422, f"{field}: {err}") from None


def collect(service: GenerationService, pieces: Iterator) -> tuple[str, list]:
    with service.lock:
        text, steps = [], []
        for piece, step in pieces:
            text.append(piece)
            if step is not None:
                steps.append(step)
        return "".join(text), steps


def event_stream(service: GenerationService, pieces: Iterator) -> StreamingResponse:
    """Server-sent events: ``data: {"text": piece}`` per piece, then ``event: done`` with the whole text. Starlette
    runs this generator in a worker thread; a client that leaves closes it, which frees the lock."""

    def events() -> Iterator[str]:
        with service.lock:
            text = []
            for piece, _ in pieces:
                if piece:
                    text.append(piece)
                    yield f"data: {json.dumps({'text': piece}, ensure_ascii=False)}\n\n"
            yield f"event: done\ndata: {json.dumps({'text': ''.join(text)}, ensure_ascii=False)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def summarize_with_chat_model(service: GenerationService, text: str, sentences: int,
                                    timeout_s: float, instruction: str = "general") -> dict[str, Any]:
    """``POST /summarize`` with ``method: abstractive``: the service's chat model told to summarize ``text`` (with
    one of ``tformer.summarize.abstractive.INSTRUCTIONS``).

    503 when the model is no chat model (no chat template) or its context is too short for a summary; 422 when the
    text cannot be summarized; 504 past ``timeout_s`` (a worker thread cannot be stopped: its late answer is
    dropped, as for /ask).
    """
    model, tokenizer = await asyncio.to_thread(service.load)
    try:
        summarizer = AbstractiveSummarizer(model, tokenizer, instruction=instruction)
        summarizer.prompt("", sentences)  # a tokenizer without a chat template fails here, not mid-request
    except (TformerError, ValueError, AttributeError) as err:
        raise HTTPException(503, f"the language model {service.name!r} cannot write summaries: {err}") from None

    def run():
        with service.lock:
            return summarizer.summarize(text, sentences)

    try:
        summary = await asyncio.wait_for(asyncio.to_thread(run), timeout=timeout_s)
    except ValueError as err:
        raise HTTPException(422, f"text: {err}") from None
    except TimeoutError:
        raise HTTPException(504, f"the request took longer than the server's limit of {timeout_s:g} s "
                                 "(--request-timeout)") from None
    return {"method": "abstractive", "model": service.name, "summary": summary.text, "sentences": summary.sentences,
            "indices": None, "document_sentences": len(split_sentences(text)), "notes": summary.notes}
