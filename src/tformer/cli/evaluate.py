"""`tformer evaluate`: sacreBLEU and chrF of a model on a source/reference file pair."""

from __future__ import annotations

import argparse
import json
import time

HELP = "Translate a source file and score it against references with sacreBLEU (13a, cased) and chrF."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + " Files may be plain or .gz, one sentence per line.")
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--src", required=True, help="source sentences (German), one per line")
    p.add_argument("--ref", required=True, help="reference translations (English), aligned with --src")
    p.add_argument("--beam", type=int, default=4, help="beam size; 1 = greedy (default: %(default)s)")
    p.add_argument("--length-penalty", type=float, default=1.0, help="(default: %(default)s)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N lines (0 = all)")
    p.add_argument("--out", help="also write the translations to this file")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.data.corpus import read_parallel
    from tformer.decoding.translator import Translator
    from tformer.evaluation.bleu import corpus_scores

    corpus = read_parallel(args.src, args.ref)
    src, ref = (corpus.src[: args.limit], corpus.tgt[: args.limit]) if args.limit else (corpus.src, corpus.tgt)
    translator = Translator.from_pretrained(args.model)
    start = time.time()
    hyps = translator.translate(src, beam=args.beam, length_penalty=args.length_penalty)
    seconds = time.time() - start
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.writelines(h + "\n" for h in hyps)
    scores = corpus_scores(hyps, ref)
    if args.json:
        print(json.dumps({**scores.to_dict(), "sentences": len(src), "beam": args.beam, "seconds": seconds}))
    else:
        print(f"BLEU  {scores.bleu:.2f}  {scores.bleu_signature}")
        print(f"chrF  {scores.chrf:.2f}  {scores.chrf_signature}")
        print(f"{len(src)} sentences, beam {args.beam}, {seconds:.1f} s")
    return 0
