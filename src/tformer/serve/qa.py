"""Question answering over HTTP: ``POST /search`` (passages of the server's index) and ``POST /ask`` (the answer
span, from the index or from documents sent with the question).

The reader and the index are held by ``QAService``; one lock keeps their calls one at a time (SQLite connections
and the models are not shared across threads), and each call runs in a worker thread so the event loop stays free.
"""


import asyncio
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tformer.models.qa_pipeline import QuestionAnswerer
from tformer.retrieval.ask import ask
from tformer.retrieval.index import PassageIndex
from tformer.serve.schemas import ErrorResponse, ServeLimits, not_blank, without_bom

ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 503)}
MAX_DOCUMENT_CHARS = 20_000  # per document sent with /ask


class QAService:
    """A QA reader (optional) and a passage index (optional) with one lock around their use."""

    def __init__(self, reader: QuestionAnswerer | None = None, index_folder: str | Path | None = None) -> None:
        self.reader = reader
        self.index_folder = None if index_folder is None else Path(index_folder)
        self._index: PassageIndex | None = None
        self._lock = threading.Lock()
        if self.index_folder is not None:
            self._open_index()  # fail at start-up, not at the first request

    def _open_index(self) -> PassageIndex:
        if self._index is None:  # worker threads take turns under the lock
            self._index = PassageIndex.open(self.index_folder, any_thread=True)
            self._index.encoder()  # the model version check, and the encoder loaded once
        return self._index

    def search(self, query: str, top_k: int, mode: str) -> list[dict[str, Any]]:
        with self._lock:
            return [hit.__dict__ for hit in self._open_index().search(query, top_k, mode)]

    def ask(self, question: str, documents: list[str] | None, passages: int, top_k: int) -> dict[str, Any]:
        with self._lock:
            if documents:
                spans = self.reader.answer(question, documents, top_k=top_k)
                answers = [{"answer": s.text, "score": s.score, "source": f"document {s.context + 1}",
                            "passage": documents[s.context], "start": s.start, "end": s.end} for s in spans]
                return {"question": question, "answers": answers}
            found, _ = ask(self._open_index(), self.reader, question, passages, top_k=top_k)
            answers = [{"answer": a.text, "score": a.score, "source": a.source, "passage": a.passage.text,
                        "start": a.start, "end": a.end} for a in found]
            return {"question": question, "answers": answers}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AnswerSpan(BaseModel):
    answer: str
    score: float = Field(description="start + end logit of the span (higher = surer)")
    source: str
    passage: str
    start: int = Field(description="character offset of the answer in `passage`")
    end: int


class AskResponse(BaseModel):
    question: str
    answers: list[AnswerSpan]


class SearchHit(BaseModel):
    passage_id: int
    score: float
    text: str
    source: str
    title: str
    start: int
    end: int


class SearchResponse(BaseModel):
    query: str
    hits: list[SearchHit]


def add_qa_routes(app: FastAPI, qa: QAService | None, limits: ServeLimits) -> None:
    """``POST /search`` and ``POST /ask``; 503 saying how to start the server when it lacks the index/reader."""
    question_field = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_chars),
                               AfterValidator(without_bom), AfterValidator(not_blank)]
    document_field = Annotated[str, StringConstraints(min_length=1, max_length=MAX_DOCUMENT_CHARS),
                               AfterValidator(not_blank)]

    class SearchRequest(_Request):
        query: question_field = Field(examples=["When was the university founded?"])
        top_k: int = Field(5, ge=1, le=50)
        mode: Literal["hybrid", "dense", "bm25"] = "hybrid"

    class AskRequest(_Request):
        question: question_field = Field(examples=["Who founded the university?"])
        documents: list[document_field] | None = Field(
            None, max_length=limits.max_batch_size, description="texts to find the answer in; without them the "
            "server's index is searched")
        passages: int = Field(5, ge=1, le=50, description="passages retrieved from the index and read")
        top_k: int = Field(1, ge=1, le=10, description="answers to return, best first")

    def need(what: str) -> QAService:
        if qa is None or (what == "reader" and qa.reader is None) or (what == "index" and qa.index_folder is None):
            hint = "--index INDEX (made by `tformer index`)" if what == "index" else "--qa-model (default: squad)"
            raise HTTPException(503, f"this server has no {what}: start it with {hint}")
        return qa

    async def in_thread(fn, *args):
        # The same time limit as the batched routes; a worker thread cannot be stopped, so a late answer is dropped.
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout=limits.request_timeout_s)
        except ValueError as err:  # e.g. a question longer than the reader's window
            raise HTTPException(422, str(err)) from None
        except TimeoutError:
            raise HTTPException(504, f"the request took longer than the server's limit of "
                                     f"{limits.request_timeout_s:g} s (--request-timeout)") from None

    @app.post("/search", response_model=SearchResponse, responses=ERRORS, summary="Search the passage index")
    async def search(request: SearchRequest) -> dict[str, Any]:
        """The best passages of the server's index for a query (hybrid: embeddings + BM25)."""
        service = need("index")
        return {"query": request.query, "hits": await in_thread(service.search, request.query, request.top_k,
                                                                request.mode)}

    @app.post("/ask", response_model=AskResponse, responses=ERRORS, summary="Answer a question from documents")
    async def ask_route(request: AskRequest) -> dict[str, Any]:
        """The best answer spans, from the `documents` sent or from the server's index, with their passages."""
        service = need("reader")
        if not request.documents:
            need("index")
        return await in_thread(service.ask, request.question, request.documents, request.passages, request.top_k)
