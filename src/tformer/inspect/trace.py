"""Decoding traces: at every generated position, the chosen token and the model's top-k candidates, and their
plain-data (JSON) form.

A trace follows the hypothesis decoding returned (greedy's, or the best of beam search). It is computed by
teacher-forcing that hypothesis through the model in one pass: the decoder is causal, so position t sees exactly the
prefix decoding saw and gets the same distribution (up to floating-point rounding, about 1e-6, between the cached
fused attention of decoding and the reference attention used here). The chosen tokens keep the log-probabilities
decoding returned, so a trace's steps add up to the hypothesis score. The same pass can return every attention
weight (``need_weights=True``): that is how attention is captured for a beam-search result too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from tformer.decoding.batching import pad_sources, search_sources
from tformer.decoding.search import Hypothesis, max_output_length
from tformer.decoding.translator import Translator
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.nn.outputs import DecoderOutput, EncoderOutput
from tformer.text.labels import bpe_token_label


@dataclass
class Candidate:
    token_id: int
    token: str  # as people read it (see ``tformer.text.labels``)
    prob: float


@dataclass
class TraceStep:
    t: int  # generated position, from 1; the last step emits the end of sequence
    token_id: int
    token: str
    log_prob: float  # as decoding scored it; the steps' values sum to the hypothesis score
    rank: int  # 1 = the most probable token at this position
    candidates: list[Candidate]  # the model's top-k at this position, most probable first
    forced_end: bool = False  # the length limit allowed only the end of sequence here

    @property
    def prob(self) -> float:
        return math.exp(self.log_prob)


@dataclass
class ForcedPass:
    """One hypothesis run through the model in one pass (teacher forcing)."""

    log_probs: Tensor  # (steps, vocab): the distribution at each generated position; the last one emits EOS
    encoded: EncoderOutput  # self_weights per layer (1, heads, src_len, src_len) when weights were asked for
    decoded: DecoderOutput  # self/cross weights per layer (1, heads, steps, steps | src_len)


@dataclass
class DecodingTrace:
    source: str
    source_tokens: list[str]  # the encoder's input, ending with </s>
    translation: str
    beam: int  # 1 = greedy
    score: float  # sum of the steps' log-probabilities
    normalized_score: float | None  # beam search's ranking score: score / length ** length_penalty
    steps: list[TraceStep]
    forward: ForcedPass | None = field(default=None, repr=False)  # kept when attention weights were asked for

    @property
    def target_tokens(self) -> list[str]:
        """The generated tokens, end of sequence included: one per step."""
        return [s.token for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data for JSON, without the tensors (``tformer translate --json``); ``trace_json``
        is the shorter form the HTTP API returns."""
        data = asdict(self)
        data.pop("forward")
        for step in data["steps"]:
            step["prob"] = math.exp(step["log_prob"])
        return data


def trace_json(trace: DecodingTrace) -> dict[str, Any]:
    """A decoding trace as the HTTP API returns it: tokens, scores and, per step, the chosen token with the top
    candidates (token ids left out)."""
    data = trace.to_dict()
    steps = [{"t": s["t"], "token": s["token"], "prob": s["prob"], "log_prob": s["log_prob"], "rank": s["rank"],
              "forced_end": s["forced_end"],
              "candidates": [{"token": c["token"], "prob": c["prob"]} for c in s["candidates"]]}
             for s in data["steps"]]
    return {"source_tokens": trace.source_tokens, "target_tokens": trace.target_tokens, "beam": trace.beam,
            "score": trace.score, "normalized_score": trace.normalized_score, "steps": steps}


@torch.inference_mode()
def teacher_force(model: Seq2SeqTransformer, src: Tensor, tokens: Sequence[int], need_weights: bool = False
                  ) -> ForcedPass:
    """Score a given output in one pass.

    Args:
        src: (1, src_len) source ids, ending with EOS as decoding saw them.
        tokens: the generated ids, without BOS and EOS.
        need_weights: also return every attention weight (reference attention path).
    Returns:
        ForcedPass with log_probs (len(tokens) + 1, vocab).
    """
    if src.dim() != 2 or src.size(0) != 1:
        raise ValueError(f"src must have shape (1, src_len), got {tuple(src.shape)}")
    tgt = torch.tensor([[model.config.bos_id, *tokens]], dtype=torch.long, device=src.device)  # (1, steps)
    encoded = model.encode(src, need_weights=need_weights)
    decoded = model.decode(tgt, encoded, need_weights=need_weights)
    return ForcedPass(model.output.log_probs(decoded.hidden)[0].cpu(), encoded, decoded)


def trace_steps(
    log_probs: Tensor, hypothesis: Hypothesis, eos_id: int, limit: int, top_k: int, label: Callable[[int], str]
) -> list[TraceStep]:
    """One TraceStep per generated token of ``hypothesis`` (EOS included).

    Args:
        log_probs: (steps, vocab) from ``teacher_force`` on this hypothesis.
        limit: the length limit decoding used: at step ``limit`` (from 0) only EOS was allowed.
        label: token id -> text shown to people.
    """
    chosen = [*hypothesis.tokens, eos_id]
    if len(hypothesis.step_log_probs) != len(chosen) or log_probs.size(0) != len(chosen):
        raise ValueError(f"hypothesis with {len(chosen)} steps (EOS included) has {len(hypothesis.step_log_probs)} "
                         f"step log-probabilities and {log_probs.size(0)} distributions")
    k = min(top_k, log_probs.size(-1))
    steps = []
    for t, (token, lp) in enumerate(zip(chosen, hypothesis.step_log_probs)):
        dist = log_probs[t]  # (vocab,)
        top_lp, top_ids = dist.topk(k)
        candidates = [Candidate(i, label(i), math.exp(v)) for i, v in zip(top_ids.tolist(), top_lp.tolist())]
        rank = int((dist > dist[token]).sum()) + 1
        steps.append(TraceStep(t + 1, token, label(token), lp, rank, candidates, forced_end=t == limit))
    return steps


def trace_translations(
    translator: Translator,
    texts: Sequence[str],
    beam: int = 1,
    top_k: int = 3,
    length_penalty: float | None = None,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    need_weights: bool = False,
) -> list[DecodingTrace]:
    """Translate each text as ``Translator.translate`` does (greedy for ``beam=1``) and trace the result.

    With ``need_weights`` each trace keeps its ``ForcedPass``, holding every attention weight of the returned
    hypothesis. An empty text gives an empty trace.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    model, tokenizer = translator.model, translator.tokenizer
    length_penalty = translator.length_penalty if length_penalty is None else length_penalty
    cfg = model.config
    device = next(model.parameters()).device

    def label(token_id: int) -> str:
        return bpe_token_label(tokenizer.id_to_token(token_id))

    sources = translator.encode_sources(texts)
    # one sentence per batch: no padding, so the trace shows exactly what a single translation computes
    found = search_sources(model, sources, beam, 1, length_penalty, 1, max_len_a, max_len_b, device)
    traces = []
    for text, ids, hyps in zip(texts, sources, found):
        if not ids:
            traces.append(DecodingTrace(text, [], "", beam, 0.0, None, []))
            continue
        src = pad_sources([ids], cfg.pad_id, cfg.eos_id).to(device)  # (1, src_len)
        hyp = hyps[0]
        forward = teacher_force(model, src, hyp.tokens, need_weights)
        limit = max_output_length(src.size(1), cfg.max_len, max_len_a, max_len_b)
        steps = trace_steps(forward.log_probs, hyp, cfg.eos_id, limit, top_k, label)
        traces.append(DecodingTrace(
            text, [label(i) for i in src[0].tolist()], tokenizer.decode(hyp.tokens), beam, hyp.score,
            hyp.normalized_score, steps, forward if need_weights else None,
        ))
    return traces


def format_trace(trace: DecodingTrace) -> str:
    """The trace as text: a header, then one line per step, e.g. ``t=1  A 0.85 | The 0.10 | An 0.03``.

    The chosen token comes first, then the other top candidates, most probable first. A chosen token that was not
    the most probable (beam search) shows its rank.
    """
    if not trace.steps:
        return f"{trace.source}\n-> (empty input: nothing to translate)"
    how = "greedy" if trace.beam == 1 else f"beam {trace.beam}"
    score = f"score {trace.score:.3f} (sum of the steps' log-probabilities)"
    if trace.normalized_score is not None:
        score += f", ranked by {trace.normalized_score:.3f} (length-normalised)"
    lines = [trace.source, f"-> {trace.translation}   [{how}; {score}]"]
    total = 0.0
    for step in trace.steps:
        total += step.log_prob
        chosen = f"{step.token} {_prob(step.prob)}"
        if step.forced_end:
            chosen += " (end forced: length limit)"
        elif step.rank > 1:
            chosen += f" (rank {step.rank})"
        others = [f"{c.token} {_prob(c.prob)}" for c in step.candidates if c.token_id != step.token_id]
        others = others[: len(step.candidates) - 1]
        lines.append(f"t={step.t}  " + " | ".join([chosen, *others]) + f"    [log p {step.log_prob:.3f}, "
                     f"sum {total:.3f}]")
    return "\n".join(lines)


def _prob(p: float) -> str:
    return f"{p:.2f}" if p >= 0.005 else f"{p:.0e}"
