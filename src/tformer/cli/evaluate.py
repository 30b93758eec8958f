"""`tformer evaluate`: sacreBLEU and chrF of a model on a source/reference file pair."""

from __future__ import annotations

import argparse
import json
import time

from tformer.cli.numbers import non_negative_float, non_negative_int, positive_int
from tformer.cli.options import add_precision


def _dataset(name: str, split: str):
    def load():
        from tformer.data import corpus

        return getattr(corpus, name)(split)

    return load


DATASETS = {
    "multi30k-val": _dataset("multi30k", "val"),
    "multi30k-test": _dataset("multi30k", "test_2016_flickr"),
    "tatoeba-valid": _dataset("tatoeba", "valid"),
    "tatoeba-test": _dataset("tatoeba", "test"),
}

HELP = "Translate a source file and score it against references with sacreBLEU (13a, cased) and chrF."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + " Files may be plain or .gz, one sentence per line.")
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--src", help="source sentences (German), one per line")
    p.add_argument("--ref", help="reference translations (English), aligned with --src")
    p.add_argument("--dataset", choices=sorted(DATASETS), help="a named test set instead of --src/--ref "
                   "(read from $TFORMER_DATA or ../shared/data)")
    p.add_argument("--beam", type=positive_int, default=4, help="beam size; 1 = greedy (default: %(default)s)")
    p.add_argument("--length-penalty", type=non_negative_float, help="beam ranking: score / length**LP "
                   "(default: the model's generation.json, else 1.0)")
    p.add_argument("--limit", type=non_negative_int, default=0, help="score only the first N lines (0 = all)")
    p.add_argument("--out", help="also write the translations to this file")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    add_precision(p)
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None, help="show a progress bar "
                       "on stderr even when it is not a terminal (default: only on a terminal)")
    shown.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


def show_progress(asked: bool | None) -> bool:
    """--progress / --no-progress, else a bar only when stderr is a terminal (not in logs or pipes)."""
    import sys

    return asked if asked is not None else sys.stderr.isatty()


def run(args: argparse.Namespace) -> int:
    from tformer.data.corpus import read_parallel
    from tformer.decoding.translator import Translator
    from tformer.errors import DataError
    from tformer.evaluation.bleu import corpus_scores

    if args.dataset:
        corpus = DATASETS[args.dataset]()
    elif args.src and args.ref:
        corpus = read_parallel(args.src, args.ref)
    else:
        raise DataError("give --src and --ref, or --dataset")
    src, ref = (corpus.src[: args.limit], corpus.tgt[: args.limit]) if args.limit else (corpus.src, corpus.tgt)
    translator = Translator.from_pretrained(args.model, precision=args.precision)
    from tqdm import tqdm

    start = time.time()
    with tqdm(total=len(src), unit="sent", desc="translating", disable=not show_progress(args.progress),
              dynamic_ncols=True) as bar:
        hyps = translator.translate(src, beam=args.beam, length_penalty=args.length_penalty, progress=bar.update)
    seconds = time.time() - start
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.writelines(h + "\n" for h in hyps)
    scores = corpus_scores(hyps, ref)
    if args.json:
        penalty = translator.length_penalty if args.length_penalty is None else args.length_penalty
        print(json.dumps({**scores.to_dict(), "sentences": len(src), "beam": args.beam, "length_penalty": penalty,
                          "seconds": seconds}))
    else:
        print(f"BLEU  {scores.bleu:.2f}  {scores.bleu_signature}")
        print(f"chrF  {scores.chrf:.2f}  {scores.chrf_signature}")
        print(f"{len(src)} sentences, beam {args.beam}, {seconds:.1f} s")
    return 0
