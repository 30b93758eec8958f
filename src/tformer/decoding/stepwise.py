"""Generation one step at a time, saying what each step chose from: for traces (``tformer generate --trace``),
for streaming text, and for continuing past the model's context window.

Builds on ``tformer.decoding.generate``'s rules (``GenerationConfig``, ``next_token_scores``, ``choose``): within the
context it picks exactly the tokens ``generate_tokens`` picks (same seed, same draws). When a continuation fills
the context window, the window slides: the model starts again from the last half of the window's tokens (what a
model trained on random windows has seen), and the repetition penalty keeps counting every token so far.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from tformer.decoding.generate import (
    GenerationConfig,
    TextPieces,
    TextTokenizer,
    choose,
    end_ids,
    next_token_scores,
)
from tformer.models.causal_lm import CausalLM


@dataclass
class GenerationStep:
    t: int  # generated position, from 1
    token_id: int
    prob: float  # the chosen token's probability under the distribution it was picked from
    candidates: list[tuple[int, float]]  # the most probable tokens of that distribution and their probabilities


def check_prompt(model: CausalLM, prompt_ids: Sequence[int]) -> None:
    """A prompt must leave room for at least one new token in the context; the error names both lengths."""
    if not prompt_ids:
        raise ValueError("the prompt is empty (it needs at least one token)")
    if len(prompt_ids) >= model.config.max_len:
        raise ValueError(f"prompt of {len(prompt_ids)} tokens is longer than the model's context allows "
                         f"(max_len={model.config.max_len}, room for at least one new token)")


@torch.inference_mode()
def generation_steps(
    model: CausalLM, prompt_ids: Sequence[int], config: GenerationConfig, top: int = 0, slide: bool = True
) -> Iterator[GenerationStep]:
    """The steps continuing one prompt, until an end token or ``max_new_tokens`` (stop strings are the text
    layer's business: ``continue_text``). ``top``: candidates listed per step. ``slide`` False ends at the context's
    end, as ``generate_tokens`` does."""
    check_prompt(model, prompt_ids)
    window, vocab = model.config.max_len, model.config.vocab_size
    eos = end_ids(model, config)
    generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
    seen = torch.zeros(1, vocab, dtype=torch.bool)  # (1, vocab): tokens in the prompt or output
    seen[0, list(prompt_ids)] = True
    tokens = list(prompt_ids)
    cache, pending = model.new_cache(capacity=window), list(prompt_ids)
    for t in range(1, config.max_new_tokens + 1):
        if cache.length + len(pending) >= window:  # the window is full: start again from its last half
            if not slide:
                return
            cache, pending = model.new_cache(capacity=window), tokens[-(window // 2):]
        ids = torch.tensor([pending], dtype=torch.long)  # (1, new_len)
        logits = model.decode(ids, None, cache, last_only=True).logits[:, -1].float()  # (1, vocab)
        scores = next_token_scores(logits, seen, config)
        token = int(choose(scores, config, generator)[0])
        probs = scores.softmax(dim=-1)[0]  # (vocab,)
        best = probs.topk(min(top, vocab)) if top else None
        candidates = list(zip(best.indices.tolist(), best.values.tolist())) if best is not None else []
        yield GenerationStep(t, token, float(probs[token]), candidates)
        if token in eos:
            return
        seen[0, token] = True
        tokens.append(token)
        pending = [token]


def continue_text(
    model: CausalLM, tokenizer: TextTokenizer, prompt_ids: Sequence[int], config: GenerationConfig, top: int = 0,
    slide: bool = True,
) -> Iterator[tuple[str, GenerationStep | None]]:
    """Text pieces of the continuation with the step that produced each (a piece may be "" while a multi-byte
    character or a possible stop string is incomplete; the held-back rest comes last, with step None). The pieces
    join to the continuation up to, not including, the end token or the first stop string."""
    eos = end_ids(model, config)
    pieces = TextPieces(tokenizer, config.stop)
    for step in generation_steps(model, prompt_ids, config, top, slide):
        if step.token_id in eos:
            yield "", step  # the end token's step, for traces
            break
        yield pieces.add(step.token_id), step
        if pieces.stopped:
            return
    rest = pieces.rest()
    if rest:
        yield rest, None
