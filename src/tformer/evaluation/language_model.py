"""How well a causal language model predicts a text: cross-entropy per token in consecutive windows.

The text's token ids are cut into consecutive windows of ``context`` tokens (the model's own context unless asked
otherwise); every token after the first is predicted once, from the tokens before it in its window; the tail
shorter than a window is left out. This is how ``tformer train-lm`` measures validation loss and the figure bundled
models report (``windowed_loss``); ``loss_by_position`` keeps the loss at each position of a window (the first
tokens of every window are predicted from little context, and cost more), and ``score_text`` adds what a user
reads: perplexity, bits, and nats per character of the text scored (``tformer score-lm``).

``strided_loss`` scores with overlapping windows instead ("sliding window"): a window starts every ``stride``
tokens and only its last ``stride`` predictions count, so every token after the first window is predicted from at
least context - stride tokens. That is closer to the model's loss on one long text, at context / stride times the
compute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from tformer.errors import ConfigError, DataError

# The model: any torch module mapping ids (batch, seq) to logits (batch, seq, vocab), with config.max_len and
# config.vocab_size (tformer.CausalLM); typed loosely so that metrics stay below the model layer.
LanguageModel = torch.nn.Module

LOGIT_BUDGET = 2**26  # logits held at once (rows x context x vocab, float32: 256 MB); caps the rows per batch


def window_rows(context: int, vocab: int, batch_size: int) -> int:
    """Windows per forward pass: ``batch_size``, fewer when their logits would pass ``LOGIT_BUDGET``."""
    return max(1, min(batch_size, LOGIT_BUDGET // (context * vocab)))


def check_context(model: LanguageModel, context: int | None) -> int:
    """The window length to score with: the model's context, or a shorter one asked for."""
    if context is None:
        return model.config.max_len
    if not 1 <= context <= model.config.max_len:
        raise ConfigError(f"context must be in [1, {model.config.max_len}] (the model's context), got {context!r}")
    return context


def window_count(tokens: int, context: int, windows: int = 0) -> int:
    """How many whole windows of ``context`` predicted tokens ``tokens`` ids fill (at most ``windows`` if > 0)."""
    count = (tokens - 1) // context
    if count <= 0:
        raise DataError(f"{tokens} tokens cannot fill one window of {context} + 1")
    return min(count, windows) if windows else count


@torch.no_grad()
def loss_by_position(model: LanguageModel, ids: torch.Tensor, windows: int = 0, bf16: bool = False,
                     batch_size: int = 64, context: int | None = None) -> torch.Tensor:
    """Mean cross-entropy (nats) at each position of the windows ``windowed_loss`` scores, shape (context,):
    entry p is the loss of predicting a window's token p + 1 from the p + 1 before it. ``windows`` > 0 scores only
    the first that many windows. Its mean is ``windowed_loss``; its first entries show what a short context
    costs."""
    model.eval()
    context = check_context(model, context)
    count = window_count(len(ids), context, windows)
    ids = ids[: count * context + 1]
    inputs, targets = ids[:-1].view(count, context), ids[1:].view(count, context)  # (count, context)
    rows_per_pass = window_rows(context, model.config.vocab_size, batch_size)
    total = torch.zeros(context, dtype=torch.float64)  # (context,)
    for i in range(0, count, rows_per_pass):
        rows = slice(i, i + rows_per_pass)
        total += token_losses(model, inputs[rows], targets[rows], bf16).double().sum(0)
    return total / count


def token_losses(model: LanguageModel, inputs: torch.Tensor, targets: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Cross-entropy (nats) of each prediction of a batch of windows: inputs and targets (rows, context) ->
    (rows, context)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(inputs)  # (rows, context, vocab)
    return F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")


def windowed_loss(model: LanguageModel, ids: torch.Tensor, windows: int = 0, bf16: bool = False,
                  batch_size: int = 64, context: int | None = None) -> float:
    """Mean cross-entropy per token (nats; per character for a character model) of ``ids`` cut into consecutive
    windows, each token after the first scored once. How ``train-lm`` measures validation loss."""
    return float(loss_by_position(model, ids, windows, bf16, batch_size, context).mean())


def strided_window_count(tokens: int, context: int, stride: int, windows: int = 0) -> int:
    """How many windows of ``context`` predicted tokens, one starting every ``stride`` tokens, ``tokens`` ids hold
    (at most ``windows`` if > 0)."""
    if not 1 <= stride <= context:
        raise ConfigError(f"stride must be in [1, {context}] (the window length), got {stride!r}")
    window_count(tokens, context)  # at least one window, or a clear error
    count = (tokens - 1 - context) // stride + 1
    return min(count, windows) if windows else count


@torch.no_grad()
def strided_loss(model: LanguageModel, ids: torch.Tensor, stride: int, windows: int = 0, bf16: bool = False,
                 batch_size: int = 64, context: int | None = None) -> tuple[float, int]:
    """Mean cross-entropy per token (nats) with a window of ``context`` tokens starting every ``stride`` tokens:
    all predictions of the first window are scored, then the last ``stride`` of each later one, so each token after
    the first is scored once, the later ones from at least context - stride tokens before them. ``stride`` equal to
    the context is ``windowed_loss``. Returns (loss, tokens scored): context + (windows - 1) * stride."""
    model.eval()
    context = check_context(model, context)
    count = strided_window_count(len(ids), context, stride, windows)
    rows_per_pass = window_rows(context, model.config.vocab_size, batch_size)
    offsets = torch.arange(context + 1)
    total = torch.zeros((), dtype=torch.float64)
    for first in range(0, count, rows_per_pass):
        starts = torch.arange(first, min(first + rows_per_pass, count)) * stride  # (rows,)
        window = ids[starts[:, None] + offsets]  # (rows, context + 1), built per pass: stride 1 stays small
        losses = token_losses(model, window[:, :-1], window[:, 1:], bf16)  # (rows, context)
        if first == 0:
            total += losses[0].double().sum()
            losses = losses[1:]
        total += losses[:, context - stride :].double().sum()
    tokens = context + (count - 1) * stride
    return float(total / tokens), tokens


def position_buckets(by_position: torch.Tensor) -> dict[str, float]:
    """The loss by position within a window, averaged over the spans 0, 1-3, 4-15, 16-63, 64-255, ...: what a
    short context costs, in a few numbers."""
    spans, start, end = {}, 0, 1
    while start < len(by_position):
        stop = min(end, len(by_position))
        name = f"{start}-{stop - 1}" if stop - 1 > start else f"{start}"
        spans[name] = round(float(by_position[start:stop].mean()), 4)
        start, end = stop, end * 4
    return spans


@dataclass
class TextScore:
    """A text scored by ``score_text``. ``nats_per_token`` is the figure ``train-lm`` reports; for a character
    model tokens are characters and ``nats_per_character`` is the same number."""

    nats_per_token: float
    tokens: int  # tokens predicted (windows x context)
    characters: int  # characters those tokens spell
    windows: int
    context: int
    bf16: bool
    by_position: dict[str, float] = field(default_factory=dict)  # position_buckets of the loss by position
    stride: int | None = None  # windows started every stride tokens (strided_loss); None: consecutive windows

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / math.log(2)

    @property
    def nats_per_character(self) -> float:
        return self.nats_per_token * self.tokens / self.characters if self.characters else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"nats_per_token": self.nats_per_token, "perplexity": self.perplexity,
                "bits_per_token": self.bits_per_token, "nats_per_character": self.nats_per_character,
                "tokens": self.tokens, "characters": self.characters, "windows": self.windows,
                "context": self.context, "stride": self.stride, "bf16": self.bf16, "by_position": self.by_position}


class TokenizerLike(Protocol):  # what score_text needs (CharTokenizer, ChatTokenizer)
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


def score_text(model: LanguageModel, tokenizer: TokenizerLike, text: str, context: int | None = None, windows: int = 0,
               bf16: bool = False, batch_size: int = 64, stride: int | None = None) -> TextScore:
    """Score ``text`` as ``windowed_loss`` does (as ``strided_loss`` does with a ``stride``; then without the loss by
    position, which overlapping windows do not give), with the counts and units a report needs."""
    context = check_context(model, context)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if stride is None:
        count = window_count(len(ids), context, windows)
        by_position = loss_by_position(model, ids, count, bf16, batch_size, context)  # (context,)
        loss, tokens, buckets = float(by_position.mean()), count * context, position_buckets(by_position)
    else:
        loss, tokens = strided_loss(model, ids, stride, windows, bf16, batch_size, context)
        count, buckets = (tokens - context) // stride + 1, {}
    characters = len(tokenizer.decode(ids[1 : tokens + 1].tolist(), skip_special_tokens=False))  # those scored
    return TextScore(nats_per_token=loss, tokens=tokens, characters=characters, windows=count, context=context,
                     bf16=bf16, by_position=buckets, stride=stride)
