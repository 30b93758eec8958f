"""What the HTTP API accepts and returns: the server's limits, and pydantic models of requests and responses.

Requests are strict (a number is not a string, ``"4"`` is not a beam size) and refuse unknown fields, so a typo in
a field name is an error rather than a silently ignored option. Request models are built from the limits, so the
OpenAPI page at /docs shows the limits the server really applies.
"""

from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_DOCUMENT_CHARS = 20_000  # per document sent to /summarize (about 5,000 tokens)
MAX_SUMMARY_SENTENCES = 10


@dataclass
class ServeLimits:
    """How much one request may ask for, and how requests are batched."""

    max_chars: int = 1000  # characters per text
    max_batch_size: int = 32  # texts per model call; also the most texts one /classify or /embed request may send
    max_queue: int = 256  # requests waiting for the model; more are answered 503
    max_wait_ms: float = 5.0  # how long a request waits for others to share its model call
    max_beam: int = 8
    request_timeout_s: float = 60.0  # a request still waiting after this long is answered 503 (queued) or 504

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_batch_size", "max_queue", "max_beam"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {self.max_wait_ms}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be more than 0, got {self.request_timeout_s}")

    @property
    def max_body_bytes(self) -> int:
        """Room for the largest valid request (a full batch of texts, or one /summarize document), each character
        written as a JSON escape (up to 12 bytes)."""
        return 4096 + max(self.max_batch_size * (12 * self.max_chars + 16), 12 * MAX_DOCUMENT_CHARS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def without_bom(text: str) -> str:
    """A byte-order mark at the start (sent by some Windows tools) is not part of the text."""
    return text.removeprefix("\ufeff")


def not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is blank: give some text to work on")
    return text


def request_models(limits: ServeLimits) -> SimpleNamespace:
    """The request models for these limits: Translate, Classify, Embed, Attention and Summarize."""
    text_field = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_chars),
                         AfterValidator(without_bom), AfterValidator(not_blank)]
    texts_field = Annotated[list[text_field], Field(min_length=1, max_length=limits.max_batch_size)]

    class TranslateRequest(Request):
        text: text_field | None = Field(None, description="a German sentence (or give texts)",
                                        examples=["Ein Mann fährt Fahrrad."])
        texts: texts_field | None = Field(None, description="several German sentences, translated in one batch "
                                          "(instead of text)", examples=[["Ein Mann fährt Fahrrad.", "Guten Tag."]])
        beam: int = Field(4, ge=1, le=limits.max_beam, description="beam size; 1 = greedy")
        trace: bool = Field(False, description="also return every decoding step with the top candidates")
        attention: bool = Field(False, description="also return the cross-attention (target × source) of every "
                                "layer and head")

        @model_validator(mode="after")
        def one_of_text_and_texts(self) -> "TranslateRequest":
            if (self.text is None) == (self.texts is None):
                raise ValueError("give either text (one sentence) or texts (a list), not both or neither")
            if self.texts is not None and (self.trace or self.attention):
                raise ValueError("trace and attention are for one sentence: send text, not texts")
            return self

    class ClassifyRequest(Request):
        texts: texts_field = Field(examples=[["a lovely film", "dull and far too long"]])
        model: Literal["sentiment", "spam"] | None = Field(
            None, description="a bundled classifier: sentiment (SST-2: negative/positive) or spam (SMS: ham/spam); "
            "default: the server's classifier (--classifier, the bundled sentiment one unless told otherwise)")

    class SummarizeRequest(Request):
        text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_DOCUMENT_CHARS),
                        AfterValidator(without_bom), AfterValidator(not_blank)] = Field(
            description="the document; blank lines separate paragraphs",
            examples=["The Transformer is a sequence model based on attention alone. It drops recurrence and "
                      "convolutions entirely. Experiments on two translation tasks show it to be better in quality "
                      "while being more parallelizable and faster to train."])
        method: Literal["extractive", "abstractive"] = Field(
            "extractive", description="extractive: the document's most summary-worthy sentences (sentence encoder "
            "and a trained scorer); abstractive: written by the server's chat model (slower)")
        sentences: int = Field(1, ge=1, le=MAX_SUMMARY_SENTENCES, description="how many sentences the summary has")
        instruction: Literal["general", "paper"] = Field(
            "general", description="abstractive only: what the chat model is told (general: summarize the text; "
            "paper: state the main contribution of a paper abstract)")

    class EmbedRequest(Request):
        texts: texts_field = Field(examples=[["A man rides a bike.", "Someone is cycling."]])

    class AttentionRequest(Request):
        text: text_field = Field(examples=["The cat drank the milk because it was hungry."])
        model: Literal["auto", "encoder", "translator"] = Field(
            "auto", description="encoder: the English sentence encoder's self-attention; translator: translate "
            "the (German) text and return the encoder, decoder and cross attention of its translation; auto (the "
            "default): translator for German text, else encoder. The answer's model says which was used")

    return SimpleNamespace(Translate=TranslateRequest, Classify=ClassifyRequest, Embed=EmbedRequest,
                           Attention=AttentionRequest, Summarize=SummarizeRequest)


class AttentionMap(BaseModel):
    kind: str = Field(description="self, decoder or cross")
    description: str
    layers: int
    heads: int
    query_tokens: list[str] = Field(description="one label per row")
    key_tokens: list[str] = Field(description="one label per column")
    query_axis: str
    key_axis: str
    weights: list[list[list[list[float]]]] = Field(description="weights[layer][head][query][key]; rows sum to 1")


class Candidate(BaseModel):
    token: str
    prob: float


class TraceStep(BaseModel):
    t: int = Field(description="generated position, from 1; the last step emits </s>")
    token: str
    prob: float
    log_prob: float
    rank: int = Field(description="1 = the most probable token at this step")
    forced_end: bool = Field(description="the length limit allowed only </s> here")
    candidates: list[Candidate] = Field(description="the most probable tokens at this step, best first")


class Trace(BaseModel):
    source_tokens: list[str]
    target_tokens: list[str]
    beam: int
    score: float = Field(description="sum of the steps' log-probabilities")
    normalized_score: float | None
    steps: list[TraceStep]


class TranslateResponse(BaseModel):
    text: str | None = Field(None, description="the sentence sent as text")
    translation: str | None = Field(None, description="its translation")
    texts: list[str] | None = Field(None, description="the sentences sent as texts")
    translations: list[str] | None = Field(None, description="one translation per text, in order")
    beam: int
    trace: Trace | None = None
    attention: AttentionMap | None = Field(None, description="cross-attention: generated tokens × source tokens")


class Prediction(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    model: str
    predictions: list[Prediction]


class SummarizeResponse(BaseModel):
    method: Literal["extractive", "abstractive"]
    model: str = Field(description="the sentence encoder (extractive) or the chat model (abstractive)")
    summary: str = Field(description="the summary's sentences joined by spaces")
    sentences: list[str]
    indices: list[int] | None = Field(description="extractive: the chosen sentences' positions among the "
                                      "document's sentences, from 0; abstractive: null")
    document_sentences: int = Field(description="how many sentences the document was split into")
    notes: list[str] = Field(description="what the reader should know: a one-sentence document, a document "
                             "summarized in parts, fewer sentences than asked for...")


class EmbedResponse(BaseModel):
    model: str
    dimensions: int
    embeddings: list[list[float]] = Field(description="one L2-normalised vector per text")


class AttentionResponse(BaseModel):
    model: Literal["encoder", "translator"]
    name: str
    text: str
    translation: str | None = Field(description="the translation whose attention is shown (translator only)")
    attention: dict[str, AttentionMap] = Field(description="by kind: self (both models), decoder and cross "
                                               "(translator)")


class LoadedModel(BaseModel):
    name: str
    path: str | None
    version: str = Field(description="first 12 hex digits of a SHA-256 of the weights")
    parameters: int


class HealthResponse(BaseModel):
    status: str
    version: str = Field(description="tformer's version")
    models: dict[str, LoadedModel | None]
    limits: dict[str, int | float]
    batching: dict[str, int | float]
    queued: int


class ErrorResponse(BaseModel):
    error: str = Field(description="what went wrong, in one line")
    details: list[dict[str, str]] | None = Field(None, description="validation errors: field and problem")
