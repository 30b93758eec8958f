"""Text generation with a decoder-only model: greedy or sampled continuations of prompts, batched or streamed.

Each step takes the model's next-token logits for every unfinished row, applies the repetition penalty, then
picks greedily (temperature 0) or samples from the temperature-scaled distribution cut to the top-k tokens and
to the smallest set whose probability reaches top-p. A row ends at an end token (EOS), at a stop string, or after
``max_new_tokens``. Prompts of different lengths are left-padded into one batch; the model computes each row as
if it were alone. Sampling with a ``seed`` is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from tformer.errors import ConfigError
from tformer.models.causal_lm import CausalLM


class TextTokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


@dataclass
class GenerationConfig:
    """How to continue a prompt. ``temperature`` 0 is greedy; ``top_k`` 0 and ``top_p`` 1 cut nothing."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the prompt or output less likely (CTRL's rule)
    stop: list[str] = field(default_factory=list)  # the text ends before the first of these strings
    eos_ids: list[int] | None = None  # tokens that end a row; None: the model's eos_id
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens must be a non-negative integer, got {self.max_new_tokens!r}")
        if not self.temperature >= 0:  # also refuses NaN
            raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {self.temperature!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ConfigError(f"top_k must be a non-negative integer (0 = off), got {self.top_k!r}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not self.repetition_penalty > 0:
            raise ConfigError(f"repetition_penalty must be > 0, got {self.repetition_penalty!r}")
        if any(not s for s in self.stop):
            raise ConfigError(f"stop strings must not be empty, got {self.stop!r}")


def next_token_scores(logits: Tensor, seen: Tensor, config: GenerationConfig) -> Tensor:
    """The penalised, temperature-scaled and cut logits (rows, vocab) the next token is chosen from.

    Args:
        logits: (rows, vocab) float32.
        seen: (rows, vocab) bool, True where the token is in the row's prompt or output.
    """
    if config.repetition_penalty != 1.0:
        penalised = torch.where(logits > 0, logits / config.repetition_penalty, logits * config.repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    if config.temperature == 0:
        return logits
    logits = logits / config.temperature
    if 0 < config.top_k < logits.size(-1):
        kth = logits.topk(config.top_k, dim=-1).values[:, -1:]  # (rows, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability of the better tokens: keep while it is below top_p
        drop = (before >= config.top_p).scatter(-1, order, before >= config.top_p)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def choose(scores: Tensor, config: GenerationConfig, generator: torch.Generator | None) -> Tensor:
    """(rows, vocab) -> (rows,) token ids: the best, or a sample from softmax(scores)."""
    if config.temperature == 0:
        return scores.argmax(dim=-1)
    return torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(-1)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Prompts -> ids (rows, longest) with pads first, and the mask (rows, longest), True = real token."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt):] = True
    return ids, mask


@torch.inference_mode()
def generate_tokens(
    model: CausalLM, prompts: Sequence[Sequence[int]], config: GenerationConfig | None = None
) -> Iterator[Tensor]:
    """Yield, step by step, the next token of every row (rows,); a finished row repeats its end token (or the
    model's pad id after ``max_new_tokens``). Stops when every row has ended. Stop strings are the text layer's
    business (``generate``, ``stream``)."""
    config = config or GenerationConfig()
    c = model.config
    ids, mask = left_pad(prompts, c.pad_id)
    rows, prompt_len = ids.shape
    if prompt_len >= c.max_len:
        raise ValueError(f"prompt of {prompt_len} tokens does not fit the model's context (max_len={c.max_len})")
    steps = min(config.max_new_tokens, c.max_len - prompt_len)
    eos = torch.tensor(config.eos_ids if config.eos_ids is not None else [c.eos_id], dtype=torch.long)
    generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
    seen = torch.zeros(rows, c.vocab_size, dtype=torch.bool)  # (rows, vocab): tokens in the prompt or output
    for row, prompt in enumerate(prompts):
        seen[row, list(prompt)] = True
    finished = torch.zeros(rows, dtype=torch.bool)
    cache = model.new_cache(capacity=prompt_len + steps)
    step_ids, step_mask = ids, mask
    for _ in range(steps):
        logits = model.decode(step_ids, step_mask, cache, last_only=True).logits[:, -1].float()  # (rows, vocab)
        token = choose(next_token_scores(logits, seen, config), config, generator)
        token = torch.where(finished, eos[0], token)
        seen[torch.arange(rows), token] = True
        finished |= torch.isin(token, eos)
        yield token
        if bool(finished.all()):
            return
        step_ids, step_mask = token[:, None], None


def generate(
    model: CausalLM, tokenizer: TextTokenizer, prompts: Sequence[str], config: GenerationConfig | None = None
) -> list[str]:
    """The continuation text of each prompt (without the prompt, end token or stop string)."""
    config = config or GenerationConfig()
    encoded = [tokenizer.encode(p) for p in prompts]
    outputs: list[list[int]] = [[] for _ in prompts]
    ended = [False] * len(prompts)
    eos = end_ids(model, config)
    for tokens in generate_tokens(model, encoded, config):
        for row, token in enumerate(tokens.tolist()):
            ended[row] = ended[row] or token in eos
            if not ended[row]:
                outputs[row].append(token)
                if config.stop and _stop_at(tokenizer.decode(outputs[row]), config.stop) is not None:
                    ended[row] = True
        if all(ended):
            break
    texts = [tokenizer.decode(out) for out in outputs]
    return [text[: _stop_at(text, config.stop)] if config.stop else text for text in texts]


def stream(
    model: CausalLM, tokenizer: TextTokenizer, prompt: str, config: GenerationConfig | None = None
) -> Iterator[str]:
    """The continuation of one prompt as it is generated, in text pieces that join to ``generate``'s text.

    A piece never ends inside a multi-byte character (a token may hold only part of one: the piece waits for the
    rest), nor inside what could still become a stop string.
    """
    config = config or GenerationConfig()
    eos = end_ids(model, config)
    pieces = TextPieces(tokenizer, config.stop)
    for tokens in generate_tokens(model, [tokenizer.encode(prompt)], config):
        token = int(tokens[0])
        if token in eos:
            break
        piece = pieces.add(token)
        if piece:
            yield piece
        if pieces.stopped:
            return
    rest = pieces.rest()
    if rest:
        yield rest


class TextPieces:
    """Generated token ids in, text pieces out, for streaming: a piece never ends inside a multi-byte character (a
    token may hold only part of one: the piece waits for the rest), nor inside what could still become a stop
    string; the text ends where the first stop string begins."""

    def __init__(self, tokenizer: TextTokenizer, stop: Sequence[str]) -> None:
        self.tokenizer, self.stop = tokenizer, stop
        self.hold = max((len(s) for s in stop), default=1) - 1  # characters that may begin a stop string
        self.output: list[int] = []
        self.sent = 0  # characters of the text already handed out
        self.stopped = False  # a stop string has appeared: nothing more comes

    def add(self, token: int) -> str:
        """The piece of text that ``token`` completes ("" while it waits for more)."""
        self.output.append(token)
        text = self.tokenizer.decode(self.output)
        cut = _stop_at(text, self.stop) if self.stop else None
        if cut is not None:
            self.stopped = True
            return text[self.sent : cut]
        ready = len(text.rstrip("\ufffd")) - self.hold  # an incomplete character decodes as U+FFFD
        if ready <= self.sent:
            return ""
        piece, self.sent = text[self.sent : ready], ready
        return piece

    def rest(self) -> str:
        """What was held back, once generation has ended without a stop string."""
        return "" if self.stopped else self.tokenizer.decode(self.output)[self.sent :]


def end_ids(model: CausalLM, config: GenerationConfig) -> set[int]:
    """The token ids that end a generation: the config's, else the model's end-of-sequence id."""
    return set(config.eos_ids if config.eos_ids is not None else [model.config.eos_id])


def _stop_at(text: str, stop: Sequence[str]) -> int | None:
    """Where the first stop string in ``text`` begins; None if there is none."""
    found = [i for i in (text.find(s) for s in stop) if i >= 0]
    return min(found) if found else None
