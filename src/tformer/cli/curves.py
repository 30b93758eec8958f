"""`tformer curves`: draw a run's training curves from its metrics.jsonl, at any time."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Plot training and validation loss and validation BLEU of a training run (reads RUN/metrics.jsonl)."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curves", help=HELP, description=HELP + " Works while the run is still going.")
    p.add_argument("run_dir", metavar="RUN", help="the --out folder of `tformer train`")
    p.add_argument("--out", help="PNG path (default: RUN/curves.png)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.errors import DataError
    from tformer.files import atomic_output
    from tformer.viz.curves import plot_training_curves

    metrics = Path(args.run_dir) / "metrics.jsonl"
    if not metrics.is_file():
        raise DataError(f"no metrics file: {metrics}")
    picture = Path(args.out or Path(args.run_dir) / "curves.png")
    with atomic_output(picture) as tmp:  # the run may be drawing the same picture at this moment
        plot_training_curves(metrics, tmp)
    print(picture)
    return 0
