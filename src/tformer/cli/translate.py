"""`tformer translate`: German -> English with the bundled model or any trained model folder."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tformer.cli.numbers import non_negative_float, positive_int
from tformer.cli.options import add_device, add_precision

if TYPE_CHECKING:
    from tformer.decoding.translator import Translator

HELP = "Translate German sentences to English."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate", help=HELP,
        description=HELP + " With no TEXT, reads stdin, one sentence per line, and writes exactly one line per "
        "input line, in order (an empty line gives an empty line).",
    )
    p.add_argument("text", nargs="*", metavar="TEXT", help="sentences to translate (default: read stdin)")
    p.add_argument("--model", help="model folder (default: the bundled models/multi30k-de-en, or $TFORMER_MODEL)")
    p.add_argument("--beam", type=positive_int, default=4, help="beam size; 1 = greedy (default: %(default)s)")
    p.add_argument("--length-penalty", type=non_negative_float, help="beam ranking: score / length**LP "
                   "(default: the model's generation.json, else 1.0)")
    p.add_argument("--nbest", type=positive_int, default=1,
                   help="print the N best translations with scores, tab-separated")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="sentences per model call (default: %(default)s)")
    p.add_argument("--input", help="read sentences from this file instead of stdin")
    p.add_argument("--output", metavar="FILE", help="write the translations to this file (UTF-8, one line per input "
                   "line) instead of stdout, and say on stderr how many were written")
    p.add_argument("--trace", action="store_true", help="show every decoding step: the chosen token and the "
                   "model's most probable candidates with their probabilities, ending with </s>; with --beam > 1 "
                   "the trace follows the returned translation and its log-probabilities add up to its score")
    p.add_argument("--json", action="store_true", help="print the trace as JSON instead, one object per sentence "
                   "per line (implies --trace)")
    p.add_argument("--top-k", type=positive_int, default=3,
                   help="candidates shown per step in a trace (default: %(default)s)")
    add_precision(p)
    add_device(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.cli.io import input_texts
    from tformer.decoding.translator import Translator

    if (args.trace or args.json) and args.nbest > 1:
        raise ValueError("--trace follows one translation per sentence; use it without --nbest")
    texts = input_texts(args.text, args.input)
    translator = Translator.from_pretrained(args.model, device=args.device, precision=args.precision)
    if args.trace or args.json:
        lines = trace_lines(args, translator, texts)
    elif args.nbest > 1:
        rows = translator.translate_nbest(texts, max(args.beam, args.nbest), args.nbest, args.length_penalty,
                                          args.batch_size)
        lines = ["\t".join(f"{text}\t{score:.4f}" for text, score in row) for row in rows]
    else:
        lines = translator.translate(texts, args.beam, args.length_penalty, args.batch_size)
    write_lines(lines, args.output, f"{len(texts)} translation{'' if len(texts) == 1 else 's'}")
    return 0


def write_lines(lines: list[str], output: str | None, what: str) -> None:
    """Print the lines, or write them to ``output`` (atomically) and say so on stderr."""
    if output is None:
        for line in lines:
            print(line)
        return
    import sys

    from tformer.files import write_text_atomic

    write_text_atomic(output, "".join(line + "\n" for line in lines))
    print(f"wrote {what} to {output}", file=sys.stderr)


def trace_lines(args: argparse.Namespace, translator: Translator, texts: list[str]) -> list[str]:
    import json

    from tformer.inspect.trace import format_trace, trace_translations

    traces = trace_translations(translator, texts, args.beam, args.top_k, args.length_penalty)
    if args.json:
        return [json.dumps(trace.to_dict(), ensure_ascii=False) for trace in traces]
    return [("\n" if i else "") + format_trace(trace) for i, trace in enumerate(traces)]
