"""Options several subcommands share, defined once: ``--device``, ``--precision``."""

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


PRECISIONS = ("float32", "bfloat16", "int8")  # tformer.models.seq2seq.PRECISIONS (not imported: no torch at parse)


def add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="number format the model computes in: float32 (default, the trained weights as they "
                        "are), bfloat16 (CPUs with AVX512-BF16 or AMX, and GPUs) or int8 (CPU: weights stored in 8 "
                        "bits, inputs rounded on the fly); the lower ones are faster and may word a few sentences "
                        "differently (docs/translation.md measures BLEU and how many translations stay the same)")
