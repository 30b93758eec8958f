"""The `tformer` command: one subcommand per module in this package, each thin."""

from __future__ import annotations

import argparse
import os
import sys

from tformer import __version__
from tformer.cli import (
    ask,
    attention,
    chat,
    classify,
    curves,
    embed,
    evaluate,
    export,
    finetune,
    finetune_qa,
    generate,
    index,
    plot_positions,
    qa,
    score_lm,
    search,
    serve,
    summarize,
    train,
    train_lm,
    translate,
)
from tformer.errors import TformerError

COMMANDS = [translate, evaluate, train, curves, finetune, finetune_qa, classify, embed, export, attention,
            plot_positions, serve, summarize, index, search, qa, ask, train_lm, generate, chat,
            score_lm]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tformer",
        description="The Transformer, from the paper to production: translate German to English, train models, "
        "load BERT encoders, and look inside at attention.",
    )
    parser.add_argument("--version", action="version", version=f"tformer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    for command in sub.choices.values():  # global flags work after the subcommand too: tformer translate --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show full tracebacks on errors")
        command.add_argument("--version", action="version", version=f"tformer {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at exit where it could only be ignored noisily
        return status
    except BrokenPipeError:  # the reader went away (`tformer translate ... | head -1`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 0
    except KeyboardInterrupt:
        print("tformer: interrupted", file=sys.stderr)
        return 130
    except (TformerError, ValueError, OSError, RuntimeError) as err:
        if args.debug or os.environ.get("TFORMER_DEBUG"):
            raise
        print(f"tformer {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
