"""Tokenizer + span model + decoding, ready for texts: the best answer span for a question over one or more
contexts, as exact characters of the context.

Decoding follows the original BERT recipe: in every window, the ``n_best`` highest start and end logits among
context tokens are paired; a pair is kept when the end does not precede the start, the span is at most
``max_answer_length`` tokens, and the window gives the start token its most context; a span scores the sum of its
two logits, and the best over all windows (and contexts) wins.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from tformer.data.batching import length_sorted_chunks
from tformer.data.squad import Window, make_windows
from tformer.errors import ModelFolderError
from tformer.models.bert_qa import BertForQuestionAnswering
from tformer.text.pretrained import Tokenizer

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"  # the repository's bundled models
BUNDLED_QA = {"squad": "qa-minilm-squad"}  # short name -> folder under models/ ($TFORMER_MODELS overrides)
DEFAULT_QA_MODEL = "squad"


def resolve_qa_model(name_or_path: str | Path) -> Path:
    """A QA model folder, or the bundled model's short name (``squad``)."""
    from tformer.pretrained import resolve_pretrained

    key = str(name_or_path).lower()
    if key in BUNDLED_QA and not Path(name_or_path).is_dir():
        folder = Path(os.environ.get("TFORMER_MODELS", MODELS_DIR)) / BUNDLED_QA[key]
        if not folder.is_dir():
            raise ModelFolderError(f"the bundled QA model is missing from {folder}; pass --model with a folder "
                                   "written by `tformer finetune-qa`")
        return folder
    return resolve_pretrained(name_or_path)


@dataclass
class Span:
    text: str  # context[start:end]
    score: float  # start logit + end logit
    start: int  # character offsets in its context
    end: int
    context: int = 0  # index of the context it comes from


def best_spans(
    start_logits: Tensor, end_logits: Tensor, window: Window, n_best: int = 20, max_answer_length: int = 30
) -> list[tuple[float, int, int]]:
    """Candidate spans of one window, best first, as (score, first token, last token).

    Args:
        start_logits, end_logits: (seq,) for this window (padding beyond ``len(window.input_ids)`` is ignored).
    """
    n = len(window.input_ids)
    context = torch.tensor([o is not None for o in window.offsets])  # (seq,)
    starts = start_logits[:n].masked_fill(~context, float("-inf"))
    ends = end_logits[:n].masked_fill(~context, float("-inf"))
    k = min(n_best, int(context.sum()))
    if k == 0:
        return []
    top_starts, top_ends = starts.topk(k).indices.tolist(), ends.topk(k).indices.tolist()
    found = []
    for s in top_starts:
        if not window.max_context[s]:
            continue
        for e in top_ends:
            if s <= e < s + max_answer_length:
                found.append((float(starts[s] + ends[e]), s, e))
    return sorted(found, reverse=True)


class QuestionAnswerer:
    """A fine-tuned ``BertForQuestionAnswering`` with its tokenizer: questions and contexts in, answer spans out."""

    def __init__(
        self,
        model: BertForQuestionAnswering,
        tokenizer: Tokenizer,
        max_length: int = 384,
        doc_stride: int = 128,
        max_answer_length: int = 30,
        n_best: int = 20,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = min(max_length, model.config.max_len)
        self.doc_stride = doc_stride
        self.max_answer_length = max_answer_length
        self.n_best = n_best

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_QA_MODEL, **options) -> QuestionAnswerer:
        """A folder written by ``tformer finetune-qa``, an adapter folder, any Hugging Face BERT QA model, or
        ``"squad"``: the bundled MiniLM fine-tuned on SQuAD (the default)."""
        folder = resolve_qa_model(name_or_path)
        model = BertForQuestionAnswering.from_pretrained(folder)
        tokenizer_folder = folder
        if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
            from tformer.pretrained import resolve_pretrained

            tokenizer_folder = resolve_pretrained(_adapter_base(folder))
        return cls(model, Tokenizer.from_pretrained(tokenizer_folder), **{**_trained_settings(folder), **options})

    @property
    def max_question_length(self) -> int:
        """Question tokens the window takes, leaving at least half of it for the context."""
        return self.max_length // 2 - 3

    def windows(self, question: str, contexts: Sequence[str]) -> list[Window]:
        """Every window of every context (``Window.example`` = index of the context)."""
        if not question.strip():
            raise ValueError("the question is empty")
        out = []
        for i, context in enumerate(contexts):
            out += make_windows(self.tokenizer, question, context, self.max_length, self.doc_stride,
                                self.max_question_length, example=i, truncate_question=False)
        return out

    @torch.no_grad()
    def logits(self, windows: Sequence[Window], batch_size: int = 32) -> list[tuple[Tensor, Tensor]]:
        """Start and end logits (seq,) of each window, in order; batches group windows of similar length."""
        out: list[tuple[Tensor, Tensor] | None] = [None] * len(windows)
        device = next(self.model.parameters()).device
        for index in length_sorted_chunks([len(w.input_ids) for w in windows], batch_size, skip_empty=False):
            batch = collate([windows[i] for i in index], self.tokenizer.pad_id, device)
            result = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            for row, i in enumerate(index):
                out[i] = (result.start_logits[row].float().cpu(), result.end_logits[row].float().cpu())
        return out  # type: ignore[return-value]

    def decode(self, windows: Sequence[Window], logits: Sequence[tuple[Tensor, Tensor]],
               contexts: Sequence[str], top_k: int = 1) -> list[Span]:
        """The ``top_k`` best distinct spans over all windows, best first."""
        spans: dict[tuple[int, int, int], Span] = {}
        for window, (start_logits, end_logits) in zip(windows, logits):
            for score, s, e in best_spans(start_logits, end_logits, window, self.n_best, self.max_answer_length):
                first, last = window.offsets[s], window.offsets[e]
                key = (window.example, first[0], last[1])
                if key not in spans or spans[key].score < score:
                    text = contexts[window.example][first[0] : last[1]]
                    spans[key] = Span(text, score, first[0], last[1], window.example)
        return sorted(spans.values(), key=lambda span: -span.score)[:top_k]

    def answer(self, question: str, contexts: str | Sequence[str], top_k: int = 1) -> list[Span]:
        """The ``top_k`` best answer spans for ``question`` over ``contexts`` (one text or several)."""
        contexts = [contexts] if isinstance(contexts, str) else list(contexts)
        if not any(c.strip() for c in contexts):
            raise ValueError("the context is empty")
        windows = self.windows(question, contexts)
        return self.decode(windows, self.logits(windows), contexts, top_k)


def collate(windows: Sequence[Window], pad_id: int, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """Pad windows into (batch, seq) tensors: input_ids, attention_mask, token_type_ids, start/end positions."""
    width = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)  # (batch, seq)
    mask = torch.zeros(len(windows), width, dtype=torch.long)
    types = torch.zeros(len(windows), width, dtype=torch.long)
    for row, w in enumerate(windows):
        n = len(w.input_ids)
        ids[row, :n] = torch.tensor(w.input_ids)
        mask[row, :n] = 1
        types[row, :n] = torch.tensor(w.token_type_ids)
    starts = torch.tensor([w.start_position for w in windows])
    ends = torch.tensor([w.end_position for w in windows])
    return {name: t.to(device) for name, t in (("input_ids", ids), ("attention_mask", mask),
                                                ("token_type_ids", types), ("start_positions", starts),
                                                ("end_positions", ends))}


def _adapter_base(folder: Path) -> str:
    import json

    from tformer.models.adapter import ADAPTER_FILE

    path = folder / ADAPTER_FILE
    return json.loads(path.read_text(encoding="utf-8"))["base"] if path.is_file() else str(folder)


TRAINING_RECIPE = "finetune_qa_config.json"  # written by `tformer finetune-qa` beside the model
DECODING_SETTINGS = ("max_length", "doc_stride", "max_answer_length", "n_best")


def _trained_settings(folder: Path) -> dict:
    """The window and decoding settings the model was fine-tuned and evaluated with, when its folder says."""
    import json

    path = folder / TRAINING_RECIPE
    if not path.is_file():
        return {}
    recipe = json.loads(path.read_text(encoding="utf-8"))
    return {k: recipe[k] for k in DECODING_SETTINGS if isinstance(recipe.get(k), int)}
