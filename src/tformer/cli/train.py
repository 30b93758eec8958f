"""`tformer train`: train a translation model from a recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from tformer.cli.numbers import positive_int

HELP = "Train a German->English translation Transformer from a recipe (TOML or JSON)."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=HELP, description=HELP + " Checkpoints, metrics.jsonl, curves.png and the "
                       "final model folder (OUT/final) are written under --out. A recipe with train.init_from "
                       "continues from a model folder instead of random weights: the bundled model is "
                       "recipes/everyday_stage1_scratch.toml (to runs/everyday-stage1, bundled into "
                       "models/multi30k-de-en-next), then recipes/everyday_stage2.toml and "
                       "recipes/everyday_stage3.toml, each continuing the previous stage's folder "
                       "(docs/translation.md).")
    p.add_argument("--config", required=True, help="recipe file, e.g. recipes/multi30k_de_en.toml")
    p.add_argument("--out", default="runs/multi30k-de-en", help="output folder (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from the newest valid checkpoint in --out")
    p.add_argument("--data", help="corpora folder (default: $TFORMER_DATA or ../shared/data)")
    p.add_argument("--max-steps", type=positive_int, help="override the recipe's train.max_steps")
    p.add_argument("--init-from", metavar="DIR", help="start from this model folder (config.json, model.safetensors, "
                   "tokenizer.json), overriding the recipe's train.init_from: a later stage of the bundled model "
                   "from an earlier stage kept elsewhere")
    p.add_argument("--skip-nonfinite", action="store_true", help="skip an update whose loss is NaN/inf instead of "
                   "stopping (the default stops, keeping the last good checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.set_defaults(run=run)


INIT_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def check_init_from(folder: Path, config: Path) -> None:
    """A recipe's ``init_from`` must be a finished model folder; when it is not, say which run writes it."""
    missing = [name for name in INIT_FILES if not (folder / name).is_file()]
    if not missing:
        return
    what = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
    raise FileNotFoundError(f"the model to start from, {folder}, {what}: {stage_one_hint(folder, config)}, or pass "
                            "--init-from DIR with a model folder")


def stage_one_hint(folder: Path, config: Path) -> str:
    """``run stage 1 first: tformer train --config recipes/X.toml --out RUN`` when a recipe beside ``config`` is
    named after the run folder (runs/multi30k-de-en/final -> recipes/multi30k_de_en.toml)."""
    run_dir = folder.parent if folder.name in ("final", "best", "averaged") else folder
    candidate = config.parent / (run_dir.name.replace("-", "_") + config.suffix)
    if candidate.is_file() and candidate.resolve() != config.resolve():
        return f"run stage 1 first: tformer train --config {candidate} --out {run_dir}"
    return "run the training that writes it first"


def run(args: argparse.Namespace) -> int:
    from tformer.files import atomic_output
    from tformer.training.recipe import Recipe
    from tformer.training.trainer import Trainer
    from tformer.viz.curves import plot_training_curves

    recipe = Recipe.from_file(args.config)
    if args.data:
        recipe.data.root = args.data
    if args.skip_nonfinite:
        recipe.train.skip_nonfinite = True
    if args.max_steps is not None:
        recipe.train.max_steps = args.max_steps
    if args.init_from:
        recipe.train.init_from = args.init_from
    if recipe.train.init_from and not (args.resume and (Path(args.out) / "tokenizer.json").is_file()):
        check_init_from(Path(recipe.train.init_from), Path(args.config))
    curves = Path(args.out) / "curves.png"

    def draw_curves(metrics: Path) -> None:  # after each evaluation and at the end
        with atomic_output(curves) as tmp:  # a kill mid-draw leaves the previous picture, not half of one
            plot_training_curves(metrics, tmp)

    trainer = Trainer(recipe, args.out, resume=args.resume, progress=not args.no_progress, callbacks=[draw_curves])
    final = trainer.train()
    print(final)
    return 0
