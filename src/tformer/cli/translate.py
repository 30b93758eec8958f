"""`tformer translate`: German -> English with the bundled model or any trained model folder."""

from __future__ import annotations

import argparse

HELP = "Translate German sentences to English."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate", help=HELP,
        description=HELP + " With no TEXT, reads stdin, one sentence per line, and writes exactly one line per "
        "input line, in order (an empty line gives an empty line).",
    )
    p.add_argument("text", nargs="*", metavar="TEXT", help="sentences to translate (default: read stdin)")
    p.add_argument("--model", help="model folder (default: the bundled models/multi30k-de-en, or $TFORMER_MODEL)")
    p.add_argument("--beam", type=int, default=4, help="beam size; 1 = greedy (default: %(default)s)")
    p.add_argument("--length-penalty", type=float, default=1.0, help="beam ranking: score / length**LP "
                   "(default: %(default)s)")
    p.add_argument("--nbest", type=int, default=1, help="print the N best translations with scores, tab-separated")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per model call (default: %(default)s)")
    p.add_argument("--input", help="read sentences from this file instead of stdin")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.cli.io import read_input_lines
    from tformer.decoding.translator import Translator

    texts = args.text or read_input_lines(args.input)
    translator = Translator.from_pretrained(args.model)
    if args.nbest > 1:
        rows = translator.translate_nbest(texts, max(args.beam, args.nbest), args.nbest, args.length_penalty,
                                          args.batch_size)
        for row in rows:
            print("\t".join(f"{text}\t{score:.4f}" for text, score in row))
        return 0
    for line in translator.translate(texts, args.beam, args.length_penalty, args.batch_size):
        print(line)
    return 0


