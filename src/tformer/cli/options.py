"""Options several subcommands share, defined once: ``--device``."""

from __future__ import annotations

import argparse


def device(value: str) -> str:
    """An argparse type: a device this machine has (cpu, cuda, cuda:N, mps, auto), checked when parsed."""
    from tformer.devices import resolve_device

    try:
        return str(resolve_device(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device, default="cpu", help="where the model runs: cpu, cuda, cuda:N, mps, "
                        "or auto (a GPU when there is one) (default: %(default)s)")
