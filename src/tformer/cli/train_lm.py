"""`tformer train-lm`: train a decoder-only (GPT-style) language model on a text file from a recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from tformer.cli.numbers import positive_float, positive_int

HELP = "Train a character-level language model (a decoder-only Transformer) on a text file, from a recipe."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-lm", help=HELP, description=HELP + " The first 90% of the text trains, the rest "
                       "measures validation loss (nats per character). Checkpoints, metrics.jsonl, curves.png, "
                       "samples.txt and the final model folder (OUT/final, with its tokenizer.json) are written "
                       "under --out; `tformer generate --model OUT/final` continues a prompt with it. "
                       "Example: tformer train-lm --config recipes/shakespeare_char.toml --out runs/shakespeare")
    p.add_argument("--config", required=True, help="recipe file, e.g. recipes/shakespeare_char.toml")
    p.add_argument("--out", default="runs/shakespeare", help="output folder (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from the newest valid checkpoint in --out")
    p.add_argument("--data", help="corpora folder (default: the recipe's data.root, $TFORMER_DATA or ../shared/data)")
    p.add_argument("--max-steps", type=positive_int, help="override the recipe's train.max_steps")
    p.add_argument("--max-minutes", type=positive_float, help="override the recipe's train.max_minutes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.files import atomic_output
    from tformer.training.lm import LMRecipe, LMTrainer
    from tformer.viz.curves import plot_loss_curves

    recipe = LMRecipe.from_file(args.config)
    if args.data:
        recipe.data.root = args.data
    if args.max_steps is not None:
        recipe.train.max_steps = args.max_steps
    if args.max_minutes is not None:
        recipe.train.max_minutes = args.max_minutes
    curves = Path(args.out) / "curves.png"

    def draw_curves(metrics: Path) -> None:  # after each evaluation and at the end
        with atomic_output(curves) as tmp:
            plot_loss_curves(metrics, tmp, unit="nats per character")

    trainer = LMTrainer(recipe, args.out, resume=args.resume, progress=not args.no_progress, callbacks=[draw_curves])
    print(trainer.train())
    return 0
