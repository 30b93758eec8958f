"""`tformer generate`: continue a prompt with a causal language model (a trained run, a bundled model, smollm2)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from tformer.cli.numbers import float_in, non_negative_float, non_negative_int, positive_float, positive_int

if TYPE_CHECKING:
    from tformer.decoding.generate import GenerationConfig
    from tformer.decoding.stepwise import GenerationStep

HELP = "Continue a prompt with a decoder-only language model, streaming the text as it is generated."


def add_decoding_options(p: argparse.ArgumentParser, temperature: float) -> None:
    """The sampling flags `generate` and `chat` share (tformer.decoding.generate.GenerationConfig)."""
    p.add_argument("--max-new-tokens", type=non_negative_int, default=200, help="tokens to add at most "
                   "(default: %(default)s)")
    p.add_argument("--temperature", type=non_negative_float, default=temperature, help="0 = greedy (always the "
                   "most probable token); higher = more varied (default: %(default)s)")
    p.add_argument("--top-k", type=non_negative_int, default=0, help="sample among the k most probable tokens "
                   "only (0 = all; default: %(default)s)")
    p.add_argument("--top-p", type=float_in(0.0, 1.0, low_open=True), default=1.0, help="sample among the most "
                   "probable tokens whose probabilities add up to p, in (0, 1] (default: %(default)s)")
    p.add_argument("--repetition-penalty", type=positive_float, default=1.0, help="> 1 makes tokens already seen "
                   "less likely (default: %(default)s)")
    p.add_argument("--stop", action="append", default=[], help="end the text before this string (repeatable)")
    p.add_argument("--seed", type=non_negative_int, help="seed for sampling: the same seed gives the same text")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "int8", "int4"), default="float32", help="weights' "
                   "precision: bfloat16, int8 and int4 (weights in 8 or 4 bits, products in bfloat16; int4 is the "
                   "fastest, and holds smollm2's own 4-bit weights) decode faster on a CPU, with answers that can "
                   "part from float32's after a few words (default: %(default)s)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help=HELP, description=HELP + " --model takes a `tformer train-lm` run folder, "
                       "a model folder, a bundled model (shakespeare-char), a Hugging Face Llama/GPT-2 folder, a "
                       "GGUF file or smollm2. Example: tformer generate --model runs/shakespeare \"ROMEO:\" "
                       "--max-new-tokens 300 --temperature 0.8 --top-k 40 --seed 1")
    p.add_argument("prompt", help="the text to continue")
    p.add_argument("--model", default="smollm2", help="language model (default: %(default)s)")
    add_decoding_options(p, temperature=0.0)
    p.add_argument("--chat", action="store_true", help="send the prompt as a user message through the model's "
                   "chat template (chat models such as smollm2)")
    p.add_argument("--trace", action="store_true", help="show every step: the chosen token, its probability and "
                   "the most probable candidates")
    p.add_argument("--json", action="store_true", help="print one JSON object: the text and every step (implies "
                   "--trace)")
    p.add_argument("--top", type=positive_int, default=5, help="candidates shown per step in a trace "
                   "(default: %(default)s)")
    p.set_defaults(run=run)


def generation_config(args: argparse.Namespace, eos_ids: list[int] | None = None) -> GenerationConfig:
    from tformer.decoding.generate import GenerationConfig

    return GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, repetition_penalty=args.repetition_penalty, stop=list(args.stop),
                            eos_ids=eos_ids, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from tformer.decoding.chat import chat_prompt_ids, end_ids
    from tformer.decoding.stepwise import check_prompt, continue_text
    from tformer.interop.language_models import load_language_model

    config = generation_config(args)  # checked before the model loads
    model, tokenizer = load_language_model(args.model, args.dtype)
    if args.chat:
        config = generation_config(args, end_ids(model, tokenizer))
        ids = chat_prompt_ids(model, tokenizer, [{"role": "user", "content": args.prompt}], args.max_new_tokens)
    else:
        ids = tokenizer.encode(args.prompt)
    check_prompt(model, ids)
    trace = args.trace or args.json
    steps, text = [], []
    if not trace and not args.chat:
        sys.stdout.write(args.prompt)
    for piece, step in continue_text(model, tokenizer, ids, config, top=args.top if trace else 0):
        text.append(piece)
        if step is not None:
            steps.append(step)
        if not trace:
            sys.stdout.write(piece)
            sys.stdout.flush()
    if args.json:
        print(trace_json(args, tokenizer, "".join(text), steps))
    elif trace:
        print(format_generation_trace(tokenizer, args.prompt, "".join(text), steps))
    else:
        sys.stdout.write("\n")
    return 0


def token_label(tokenizer: Any, token_id: int) -> str:
    """A token as people read it: its text, or its vocabulary spelling when it is part of a character."""
    text = tokenizer.decode([token_id], skip_special_tokens=False)
    if "\ufffd" in text and hasattr(tokenizer, "token_text"):
        return tokenizer.token_text(token_id)
    return text


def trace_json(args: argparse.Namespace, tokenizer: Any, text: str, steps: list[GenerationStep]) -> str:
    import json

    rows = [{"t": s.t, "token_id": s.token_id, "token": token_label(tokenizer, s.token_id), "prob": s.prob,
             "candidates": [{"token_id": i, "token": token_label(tokenizer, i), "prob": p} for i, p in s.candidates]}
            for s in steps]
    settings = {k: getattr(args, k) for k in ("max_new_tokens", "temperature", "top_k", "top_p",
                                              "repetition_penalty", "stop", "seed")}
    return json.dumps({"model": str(args.model), "prompt": args.prompt, "text": text, "settings": settings,
                       "steps": rows}, ensure_ascii=False)


def format_generation_trace(tokenizer: Any, prompt: str, text: str, steps: list[GenerationStep]) -> str:
    lines = [f"prompt: {prompt!r}", f"text:   {text!r}", "", f"{'t':>4}  {'token':<14} {'prob':>6}  candidates"]
    for s in steps:
        shown = "  ".join(f"{token_label(tokenizer, i)!r} {p:.3f}" for i, p in s.candidates)
        lines.append(f"{s.t:>4}  {token_label(tokenizer, s.token_id)!r:<14} {s.prob:>6.3f}  {shown}")
    return "\n".join(lines)
