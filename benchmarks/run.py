"""`make bench`: tformer side by side with Hugging Face transformers and CTranslate2 on the same weights.

    python -m benchmarks.run [--model DIR] [--threads N] [--repeats 5] [--cases training,translation,bert,causal_lm]

Prints a table of medians and speed ratios and writes the full record as JSON to benchmarks/results/; with
--update-docs it also rewrites the results block of docs/benchmarks.md and its chart. --quick checks the script in
about a minute (tiny sizes, one repeat; the numbers mean little) and says how long the full run took last time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("training", "translation", "bert", "causal_lm")
# The targets: (case prefix, faster side, slower side) -> minimum speed ratio.
TARGETS = {("training", "tformer", "hf"): 1.3, ("translate", "tformer", "hf"): 2.0,
           ("translate", "tformer", "ct2-float32"): 1 / 1.5, ("translate", "tformer-int8", "ct2-int8"): 1 / 1.5,
           ("bert", "tformer", "hf"): 1.1,
           ("chat decoding", "tformer", "hf"): 1.1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "multi30k-de-en",
                   help="tformer translation model folder (default: the bundled model)")
    p.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1),
                   help="intra-op threads for every side (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per side (>= 5; default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per side first (default: %(default)s)")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    p.add_argument("--sentences", type=int, default=256, help="test sentences per batch-32 run (default: %(default)s)")
    p.add_argument("--sentences-batch1", type=int, default=48,
                   help="test sentences per batch-1 run (default: %(default)s)")
    p.add_argument("--quality-sentences", type=int, default=1000,
                   help="Multi30k test_2016_flickr sentences each translation side translates once for BLEU and "
                   "agreement with float32, beam 4, batch 32 (default: %(default)s, the whole set)")
    p.add_argument("--train-batches", type=int, default=4, help="training batches per repeat (default: %(default)s)")
    p.add_argument("--max-tokens", type=int, default=3000, help="token budget per training batch, as the recipe")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the JSON record (default: benchmarks/results, or a temporary folder with --quick)")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md", help="markdown file to update")
    p.add_argument("--update-docs", action="store_true", help="also rewrite the results block of --docs and its chart "
                   "(default: only the JSON record under --out)")
    p.add_argument("--no-docs", action="store_true", help="leave the docs alone (the default; kept for old scripts)")
    p.add_argument("--quick", action="store_true", help="check the script in about a minute: tiny sizes, one repeat, "
                   "no warm-up, docs untouched; the numbers mean little")
    args = p.parse_args(argv)
    if args.quick:
        args.sentences, args.sentences_batch1, args.train_batches, args.repeats, args.warmup = 4, 1, 1, 1, 0
        args.quality_sentences = 4
        args.update_docs = False
        args.out = args.out or Path(tempfile.gettempdir()) / "tformer-bench"
    if args.no_docs:
        args.update_docs = False
    args.out = args.out or ROOT / "benchmarks" / "results"
    if args.repeats < 5 and not args.quick:
        p.error(f"--repeats must be at least 5 (got {args.repeats}); use --quick to check the script")
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        p.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    needs_model = {"training", "translation"} & set(args.cases.split(","))
    if needs_model and not (args.model / "model.safetensors").is_file():
        print(f"benchmarks: no trained model in {args.model}; train it first or pass --model DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from benchmarks import report

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = args.cases.split(",")
    record = dict(
        started=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command="python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:]),
        machine=report.machine(),
        settings=dict(threads=args.threads, repeats=args.repeats, warmup=args.warmup, model=str(args.model),
                      sentences_batch32=args.sentences, sentences_batch1=args.sentences_batch1,
                      quality_sentences=args.quality_sentences,
                      train_batches=args.train_batches, max_tokens=args.max_tokens, quick=args.quick),
        cases=[], ratios=[],
    )
    if args.quick:
        print(full_run_note(ROOT / "benchmarks" / "results"), flush=True)
    started = time.time()
    for case, run in (("training", training_cases), ("translation", translation_cases), ("bert", bert_cases),
                      ("causal_lm", causal_lm_cases)):
        if case in cases:
            begun = time.time()
            run(args, record)
            print(f"  ({time.time() - begun:.0f} s)", flush=True)
    record["seconds"] = time.time() - started
    finish(args, record)
    print(f"{'quick run' if args.quick else 'run'}: {record['seconds']:.0f} s")
    return 0


def full_run_note(results: Path) -> str:
    """How long the last full run (every case, not --quick) took, from its record under ``results``."""
    for path in sorted(results.glob("bench-*.json"), reverse=True):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        settings = record.get("settings", {})
        names = {c.get("name", "").split(" ")[0] for c in record.get("cases", [])}
        if not settings.get("quick") and {"training", "translate", "bert"} <= names and "seconds" in record:
            return (f"--quick: tiny sizes, the numbers mean little. The full run took {record['seconds'] / 60:.1f} "
                    f"minutes last time ({settings.get('threads')} threads, {record.get('started', '?')}; "
                    f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}).")
    return "--quick: tiny sizes, the numbers mean little. No full run is recorded yet; it takes several minutes."


def add_case(record: dict, name: str, setting: dict, results: dict) -> None:
    from benchmarks import report

    record["cases"].append(dict(name=name, setting=setting, sides={k: v.to_dict() for k, v in results.items()}))
    for (prefix, a, b), target in TARGETS.items():
        if name.startswith(prefix) and a in results and b in results:
            record["ratios"].append(report.Ratio(name, a, b, report.speedup(results, a, b), target).to_dict())
    for a, b in (("tformer-bfloat16", "ct2-bfloat16"), ("tformer-int8", "tformer"),  # informative, no target
                 ("tformer-bfloat16", "tformer")):
        if name.startswith("translate") and a in results and b in results:
            record["ratios"].append(report.Ratio(name, a, b, report.speedup(results, a, b)).to_dict())
    print(f"  {name}: " + ", ".join(f"{k} {v.median_seconds * 1000:.0f} ms" for k, v in results.items()), flush=True)


def training_cases(args: argparse.Namespace, record: dict) -> None:
    from tformer.decoding.translator import Translator

    from benchmarks import training_step

    print("case 1: training step", flush=True)
    translator = Translator.from_pretrained(args.model)
    batches = training_step.real_batches(translator, args.train_batches, args.max_tokens)
    results = training_step.run_case(translator, batches, args.repeats, args.warmup)
    add_case(record, "training step", dict(batches=len(batches), max_tokens=args.max_tokens), results)


def translation_cases(args: argparse.Namespace, record: dict) -> None:
    from tformer.data.corpus import multi30k
    from tformer.evaluation.bleu import corpus_scores

    from benchmarks import translation

    print("case 2: translation", flush=True)
    test = multi30k("test_2016_flickr")
    engines = translation.load_engines(args.model, args.threads)
    for beam in (1, 4):
        for batch_size, count in ((32, args.sentences), (1, args.sentences_batch1)):
            texts, refs = test.src[:count], test.tgt[:count]
            results = translation.run_case(engines, texts, beam, batch_size, args.repeats, args.warmup)
            for result in results.values():
                result.extra["bleu"] = corpus_scores(result.extra["translations"], refs).bleu
                result.extra["translations"] = result.extra["translations"][:3]  # a sample; the rest is not kept
            search = "greedy" if beam == 1 else f"beam {beam}"
            add_case(record, f"translate {search}, batch {batch_size}",
                     dict(beam=beam, batch_size=batch_size, sentences=count, notes=engines.notes), results)
    # Quality at each precision: every side translates the test set once, as `tformer translate` does by default.
    texts, refs = test.src[: args.quality_sentences], test.tgt[: args.quality_sentences]
    results = translation.quality(engines, texts, beam=4, batch_size=32)
    for result in results.values():
        result.extra["bleu"] = corpus_scores(result.extra.pop("translations"), refs).bleu
    add_case(record, f"quality: Multi30k test_2016_flickr ({len(texts)} sentences, beam 4, batch 32, one run)",
             dict(beam=4, batch_size=32, sentences=len(texts)), results)
    engines.close()


def bert_cases(args: argparse.Namespace, record: dict) -> None:
    from benchmarks import bert_encoder

    print("case 3: BERT encoder (MiniLM)", flush=True)
    ours, theirs = bert_encoder.load_models("minilm")
    for batch, seq in bert_encoder.SHAPES:
        calls = 1 if batch * seq >= 1024 else 20  # short inputs: several calls per repeat, for a stable clock
        results = bert_encoder.run_case(ours, theirs, batch, seq, args.repeats, args.warmup, calls)
        add_case(record, f"bert forward {batch}x{seq}", dict(batch=batch, seq=seq, calls=calls), results)


def causal_lm_cases(args: argparse.Namespace, record: dict) -> None:
    from benchmarks import causal_lm, report

    print("case 4: chat model decoding (SmolLM2-135M-Instruct, batch 1, greedy)", flush=True)
    loaded = causal_lm.load_sides(args.threads)
    for note in loaded["notes"]:
        print(f"  note: {note}", flush=True)
    new_tokens = 4 if args.quick else 64
    results = causal_lm.run_case(loaded, new_tokens, args.repeats, args.warmup)
    bandwidth = causal_lm.measured_bandwidth()
    causal_lm.add_bandwidth_shares(loaded, results, bandwidth)
    count = 2 if args.quick else 50
    shares = causal_lm.agreement(loaded, count, 4 if args.quick else 32)
    for name, share in shares.items():
        results[name].extra["same_greedy_answer_as_float32"] = share
    name = f"chat decoding, {new_tokens} tokens, batch 1"
    add_case(record, name, dict(new_tokens=new_tokens, prompt_tokens=results["tformer"].extra["prompt_tokens"],
                                bandwidth_gb_s=bandwidth / 1e9, agreement_prompts=count,
                                notes=loaded["notes"]), results)
    best_hf = max((n for n in results if n.startswith("hf")), key=lambda n: results[n].throughput)
    fastest = max((n for n in results if n.startswith("tformer") and n not in causal_lm.BREAKS_ANSWERS),
                  key=lambda n: results[n].throughput)
    record["ratios"].append(report.Ratio(name, fastest, best_hf, report.speedup(results, fastest, best_hf),
                                         2.0).to_dict())
    print(f"  bandwidth {bandwidth / 1e9:.1f} GB/s (float32 matrix-vector product)", flush=True)
    for side, result in results.items():
        e = result.extra
        same = e.get("same_greedy_answer_as_float32")
        print(f"  {side}: {result.throughput:.1f} tokens/s, {e['weight_mb_per_token']:.0f} MB/token, "
              f"{100 * e['bandwidth_share']:.0f}% of its bandwidth ceiling ({e['ceiling_tokens_per_s']:.1f} tokens/s)"
              + (f", same greedy answer as float32 on {100 * same:.0f}% of {count} prompts" if same is not None
                 else ""), flush=True)


def finish(args: argparse.Namespace, record: dict) -> None:
    from benchmarks import report

    json_path = report.write_json(record, args.out)
    print()
    print(report.text_table(report.SIDE_HEADER, report.side_rows(record["cases"])))
    print()
    print(report.text_table(report.RATIO_HEADER, report.ratio_rows(record["ratios"])))
    print(f"\n{args.threads} threads; record written to {json_path}")
    if args.update_docs:
        chart = args.docs.parent / "benchmarks.png"
        report.write_chart(record["ratios"], chart)
        report.update_docs(record, args.docs, json_path, chart)
        print(f"updated {args.docs} and {chart}")


if __name__ == "__main__":
    sys.exit(main())
