"""`tformer score-lm`: how well a causal language model predicts a text (loss, perplexity, loss by position)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tformer.cli.numbers import float_in, non_negative_int, positive_int

DEFAULT_MAX_CONTEXT = 1024
HELP = "Measure how well a language model predicts a text: cross-entropy per token and per character, perplexity."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score-lm", help=HELP, description=HELP + " The text's tokens are cut into consecutive "
                       "windows of the model's context (or --context); every token after a window's first is "
                       "predicted once from the ones before it, and the tail shorter than a window is left out: the "
                       "validation loss `tformer train-lm` reports and model cards quote. Without --text, a model "
                       "trained by train-lm is scored on its own validation text (the part of its recipe's corpus "
                       "held out). Example: tformer score-lm --model shakespeare-char --bf16")
    p.add_argument("--model", default="shakespeare-char", help="language model: a train-lm run folder, a model "
                   "folder, a bundled model, a Hugging Face Llama/GPT-2 folder, a GGUF file or smollm2 "
                   "(default: %(default)s)")
    p.add_argument("--text", metavar="FILE", help="UTF-8 text file to score, '-' for standard input (default: "
                   "the model's validation text, from the recipe.json beside it)")
    p.add_argument("--last", type=float_in(0.0, 1.0, low_open=True), metavar="FRACTION", help="score only the last "
                   "FRACTION of the text, in (0, 1] (default: the recipe's validation_fraction without --text, else 1)")
    p.add_argument("--data", metavar="FOLDER", help="corpora folder for the recipe's corpus (default: the recipe's "
                   "data.root, $TFORMER_DATA or ../shared/data)")
    p.add_argument("--context", type=positive_int, metavar="TOKENS", help="window length, at most the model's "
                   f"context (default: the model's context, at most {DEFAULT_MAX_CONTEXT}: smollm2's 8,192 would be "
                   "slow on a CPU)")
    p.add_argument("--stride", type=positive_int, metavar="TOKENS", help="overlapping windows instead: one starts "
                   "every TOKENS tokens and only its last TOKENS predictions count, so every token after the first "
                   "window is predicted from at least (context - TOKENS) tokens before it; closer to the loss on one "
                   "long text, at context/TOKENS times the compute (default: consecutive windows)")
    p.add_argument("--windows", type=non_negative_int, default=0, metavar="N", help="score only the first N windows "
                   "(0 = all; default: %(default)s)")
    p.add_argument("--bf16", action="store_true", help="compute under bfloat16 autocast, as train-lm evaluates "
                   "when its recipe says bf16 (fast on CPUs with AVX512-BF16 or AMX; default: float32)")
    p.add_argument("--by-position", action="store_true", help="also show the loss by position within a window "
                   "(spans 0, 1-3, 4-15, ...): what a short context costs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def recipe_data(source: str | Path, root: str | None):
    """The data settings (``LMDataConfig``) of the recipe.json in a model folder or the run folder above it."""
    from tformer.errors import DataError
    from tformer.training.lm import LMRecipe

    folder = Path(source)
    for candidate in (folder / "recipe.json", folder.parent / "recipe.json"):
        if candidate.is_file():
            data = LMRecipe.from_file(candidate).data
            if root:
                data.root = root
            return data
    raise DataError(f"{source}: no recipe.json names this model's validation text; give --text FILE")


def read_text(args: argparse.Namespace, source: str | Path) -> tuple[str, str]:
    """(text to score, where it came from), after --last."""
    from tformer.errors import DataError

    if args.text:
        from tformer.cli.io import read_input_lines

        name = "standard input" if args.text == "-" else args.text
        text = "\n".join(read_input_lines(args.text))  # as summarize reads a document: errors name file and line
        last = args.last or 1.0
    else:
        data = recipe_data(source, args.data)
        path = data.path()
        if not path.is_file():
            raise DataError(f"{path}: the recipe's corpus is not there (set --data or $TFORMER_DATA, or give --text)")
        name, text = str(path), path.read_text(encoding="utf-8")
        last = args.last or data.validation_fraction
    start = int(len(text) * (1 - last))  # as LMDataConfig.cut: the default is train-lm's validation text exactly
    shown = name if start == 0 else f"{name}, last {last:.0%} ({len(text) - start:,} characters)"
    return text[start:], shown


def run(args: argparse.Namespace) -> int:
    from tformer.errors import ConfigError
    from tformer.evaluation.language_model import score_text
    from tformer.interop.language_models import load_language_model, resolve_language_model

    if args.stride is not None and args.by_position:
        raise ConfigError("--by-position needs consecutive windows: it cannot be combined with --stride")
    source = resolve_language_model(args.model)
    text, shown = read_text(args, source)
    model, tokenizer = load_language_model(args.model)
    context = args.context or min(model.config.max_len, DEFAULT_MAX_CONTEXT)
    score = score_text(model, tokenizer, text, context=context, windows=args.windows, bf16=args.bf16,
                       stride=args.stride)
    if args.json:
        print(json.dumps({"model": str(args.model), "text": shown, **score.to_dict()}))
        return 0
    precision = "bf16 autocast" if args.bf16 else "float32"
    print(f"model     {args.model}")
    print(f"text      {shown}")
    every = "" if score.stride is None else f", one every {score.stride} (the last {score.stride} of each counted)"
    print(f"scored    {score.tokens:,} tokens ({score.characters:,} characters) in {score.windows:,} windows of "
          f"{score.context}{every} ({precision})")
    print(f"loss      {score.nats_per_token:.4f} nats/token ({score.bits_per_token:.4f} bits), perplexity "
          f"{score.perplexity:.3f}")
    print(f"per char  {score.nats_per_character:.4f} nats/character")
    if args.by_position:
        print("\nloss by position within a window (nats/token):")
        for span, loss in score.by_position.items():
            print(f"  {span:>11}  {loss:.4f}")
    return 0
