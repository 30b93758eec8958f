"""`tformer plot-positions`: draw the paper's sinusoidal positional encodings."""

from __future__ import annotations

import argparse

from tformer.cli.numbers import positive_int

HELP = "Draw the sinusoidal positional-encoding table and how similar positions are to each other."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot-positions", help=HELP,
        description=HELP + " Left: the table PE(pos, dimension) the Transformer adds to its token embeddings. "
        "Right: the dot product of every two positions' encodings, which depends only on their distance.",
    )
    p.add_argument("--out", default="positions.png", help="PNG file to write (default: %(default)s)")
    p.add_argument("--d-model", type=positive_int, default=512, help="width of the encoding (default: %(default)s)")
    p.add_argument("--max-len", type=positive_int, default=100, help="number of positions drawn (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.viz.positions import plot_positions

    out = plot_positions(args.out, args.d_model, args.max_len)
    print(f"wrote {out}")
    return 0
