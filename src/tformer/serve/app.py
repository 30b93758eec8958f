"""The HTTP app: a JSON API for translation, classification, embeddings and attention, and one web page.

``create_app`` takes models that are already loaded (``tformer.serve.models.load_models`` for the real ones, tiny
ones in tests). Every model call goes through one ``DynamicBatcher``: concurrent requests are batched, never run
side by side. Bad input is answered 4xx with a message that names the field and the problem; a full queue or a
model the server does not hold is answered 503. A request leaves the queue when its client disconnects, and one
that waits longer than ``request_timeout_s`` is answered 503 (still queued) or 504 (its model call was running).
``RequestGuard`` checks the API key and the body size before a request reaches the routes.
"""

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Hashable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from tformer import __version__
from tformer.serve.access import AccessLog
from tformer.serve.batching import DynamicBatcher, QueueFullError
from tformer.serve.generation import GenerationService, add_generation_routes, summarize_with_chat_model
from tformer.serve.guard import RequestGuard, client_gone
from tformer.serve.models import MISSING, ModelUnavailableError, ServedModels
from tformer.serve.qa import QAService, add_qa_routes
from tformer.serve.schemas import (
    AttentionResponse,
    ClassifyResponse,
    EmbedResponse,
    ErrorResponse,
    HealthResponse,
    ServeLimits,
    SummarizeResponse,
    TranslateResponse,
    request_models,
)
from tformer.text.language import looks_german

DESCRIPTION = """German → English translation with a Transformer, and a look inside it: decoding steps with the
model's top candidates, and attention weights of every layer and head. Also sentence embeddings, text
classification (sentiment, spam) and summarization with a BERT encoder, question answering, and text generation
with a small chat model. The page at [/](/) shows all of it.

Requests that arrive within a few milliseconds of each other share one model call. Errors come back as
`{"error": "...", "details": [...]}`: 4xx for bad input (401: a missing or wrong API key), 503 when the server
is busy or lacks the model, 504 when the answer took longer than the server's time limit."""
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 503, 504)}


def create_app(models: ServedModels, limits: ServeLimits | None = None, api_key: str | None = None,
               qa: QAService | None = None, access_log: Callable[[str], None] | None = None,
               generation: GenerationService | None = None) -> FastAPI:
    """The app for these models: routes, error handlers, and a batcher started and stopped with the app.

    With ``api_key``, every request but the page and the API docs must send ``Authorization: Bearer API_KEY``.
    ``qa`` (a reader and/or a passage index) serves ``/ask`` and ``/search``; without it they answer 503.
    ``access_log`` receives one line per request (method, path, status, milliseconds); None = no access log.
    ``generation`` serves ``/generate`` and ``/chat`` (default: smollm2, loaded at the first such request).
    """
    limits = limits or ServeLimits()
    generation = generation or GenerationService()
    batcher = DynamicBatcher(models.run, limits.max_batch_size, limits.max_wait_ms, limits.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await asyncio.to_thread(batcher.close)

    app = FastAPIOffline(title="tformer", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.models, app.state.batcher, app.state.limits = models, batcher, limits
    add_error_handlers(app)
    add_routes(app, models, batcher, limits, generation)
    add_qa_routes(app, qa, limits)
    add_generation_routes(app, generation, limits)

    app.add_middleware(RequestGuard, max_body_bytes=limits.max_body_bytes, api_key=api_key)
    if access_log is not None:  # added last, so outermost: the guard's refusals are logged too
        app.add_middleware(AccessLog, write=access_log)
    return app


def add_routes(app: FastAPI, models: ServedModels, batcher: DynamicBatcher, limits: ServeLimits,
               generation: GenerationService) -> None:
    requests = request_models(limits)

    async def call(key: Hashable, items: list[Any]) -> list[Any]:
        """Queue the items for a batched model call and wait for their results."""
        try:
            future = batcher.submit(key, items)
        except QueueFullError as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "1"}) from None
        result, gone = asyncio.wrap_future(future), asyncio.ensure_future(client_gone())
        dropped = False
        try:
            await asyncio.wait({result, gone}, timeout=limits.request_timeout_s, return_when=FIRST_COMPLETED)
        finally:  # the client left, the time is up, or this handler was cancelled: give the place back
            gone.cancel()
            if not result.done():
                dropped = batcher.cancel(future)
                result.cancel()
        if not result.cancelled() and result.done():
            try:
                return result.result()
            except ModelUnavailableError as err:
                raise HTTPException(503, str(err)) from None
            except ValueError as err:  # passed validation but the model cannot take it (e.g. too many tokens)
                raise HTTPException(422, str(err)) from None
        if gone.done() and not gone.cancelled():  # nobody will read this answer
            raise HTTPException(499, "the client closed the connection before its answer was ready")
        if dropped:
            raise HTTPException(503, f"the server is busy: the request waited {limits.request_timeout_s:g} s "
                                "without reaching the model (the limit is --request-timeout)",
                                headers={"Retry-After": "1"})
        raise HTTPException(504, f"the request took longer than the server's limit of {limits.request_timeout_s:g} s "
                            "(--request-timeout)")

    def loaded(role: str) -> str:
        """The name of the model in this role; 503 saying how to get one when the server has none."""
        info = models.info[role]
        if info is None:
            raise HTTPException(503, MISSING[role])
        return info.name

    @app.post("/translate", response_model=TranslateResponse, responses=ERRORS, summary="Translate German to English")
    async def translate(request: requests.Translate) -> dict[str, Any]:
        """One sentence (`text`), or several (`texts`, translated in one batch as /classify and /embed take them);
        with `trace` the decoding steps, with `attention` the cross-attention of every layer and head (rows:
        generated tokens, ending with `</s>`; columns: source tokens, ending with `</s>`)."""
        key = ("translate", request.beam, request.trace, request.attention)
        if request.texts is not None:
            results = await call(key, request.texts)
            return {"texts": request.texts, "translations": [r["translation"] for r in results], "beam": request.beam}
        [result] = await call(key, [request.text])
        return {"text": request.text, "beam": request.beam, **result}

    @app.post("/classify", response_model=ClassifyResponse, responses=ERRORS, summary="Label texts")
    async def classify(request: requests.Classify) -> dict[str, Any]:
        """The fine-tuned classifier's label and probabilities for each text: the server's classifier, or with
        `model` a bundled one by name (`sentiment`, `spam`; loaded at its first request)."""
        if request.model is None:
            loaded("classifier")
        predictions = await call(("classify", request.model), request.texts)
        return {"model": models.classifier_name(request.model), "predictions": predictions}

    @app.post("/summarize", response_model=SummarizeResponse, responses=ERRORS, summary="Summarize a document")
    async def summarize(request: requests.Summarize) -> dict[str, Any]:
        """The document's `sentences` most summary-worthy sentences, in document order (`extractive`, the default),
        or a summary written by the server's chat model (`abstractive`; a document longer than its prompt is
        summarized in parts, then the parts' summaries together, and `notes` says so)."""
        if request.method == "abstractive":
            return await summarize_with_chat_model(generation, request.text, request.sentences,
                                                   limits.request_timeout_s, request.instruction)
        name = loaded("encoder")
        [result] = await call(("summarize", request.sentences), [request.text])
        if "error" in result:
            raise HTTPException(422, f"text: {result['error']}")
        return {"method": "extractive", "model": name, **result}

    @app.post("/embed", response_model=EmbedResponse, responses=ERRORS, summary="Sentence embeddings")
    async def embed(request: requests.Embed) -> dict[str, Any]:
        """One L2-normalised vector per text (mean of the encoder's final hidden states)."""
        name = loaded("encoder")
        vectors = await call(("embed",), request.texts)
        return {"model": name, "dimensions": len(vectors[0]), "embeddings": vectors}

    @app.post("/attention", response_model=AttentionResponse, responses=ERRORS, summary="Attention weights")
    async def attention(request: requests.Attention) -> dict[str, Any]:
        """Every layer's and head's attention on one text, with a label for every token. `model` "auto" (the
        default) takes the translator for German text and the encoder otherwise; the answer's `model` says which."""
        model = request.model
        if model == "auto":
            model = "translator" if looks_german(request.text) else "encoder"
        name = loaded(model)
        [result] = await call(("attention", model), [request.text])
        return {"model": model, "name": name, "text": request.text, **result}

    @app.get("/health", response_model=HealthResponse, summary="Models, versions and load")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "models": models.health(), "limits": limits.to_dict(),
                "batching": batcher.stats.to_dict(), "queued": batcher.queue.qsize()}

    page = resources.files("tformer.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page


def add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": one line, "details": [...]}``; invalid JSON is 400, other bad input 422."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request, exc: RequestValidationError) -> JSONResponse:
        details = [describe_validation_error(e) for e in exc.errors()]
        status = 400 if any(e["type"] == "json_invalid" for e in exc.errors()) else 422
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
        if len(details) > 5:
            summary += f"; and {len(details) - 5} more"
        return JSONResponse({"error": summary, "details": jsonable_encoder(details)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def describe_validation_error(error: dict[str, Any]) -> dict[str, str]:
    """A pydantic error as {"field": "texts.2", "problem": "..."}; the leading "body" of the location is dropped."""
    loc = [str(part) for part in error.get("loc", ())]
    if error["type"] == "json_invalid":
        reason = error.get("ctx", {}).get("error", "not JSON")
        return {"field": "body", "problem": f"invalid JSON ({reason})"}
    field = ".".join(loc[1:] if loc[:1] == ["body"] and len(loc) > 1 else loc) or "body"
    problem = error.get("msg", "invalid").removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        problem = "unknown field (not part of this endpoint's request)"
    elif field == "body" and error["type"] in ("dict_type", "model_attributes_type"):
        got = error.get("input")
        problem = "expected a JSON object" + (" (send it with Content-Type: application/json)"
                                              if isinstance(got, str | bytes) else f", got {json_type(got)}")
    elif error["type"] == "missing":
        problem = "required field is missing" if field != "body" else "the request needs a JSON body"
    return {"field": field, "problem": problem}


def json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
