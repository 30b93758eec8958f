"""Turn a finished training run into the bundled model: half-precision weights, measured figures, curves.

    python scripts/bundle_model.py runs/multi30k-de-en --out models/multi30k-de-en
    python scripts/bundle_model.py --measure-only models/multi30k-de-en --report /tmp/targets.json

Tunes the beam-search length penalty on Multi30k validation (never on test), then measures sacreBLEU and chrF
with greedy and beam search on Multi30k test_2016_flickr and the Tatoeba test split, the everyday checks (unseen
names and places, numbers, everyday sentences, "Ich bin Piyush.") and writes results.json (read by the model card
and the CI test of the bundled model). ``results.json["targets"]`` sets each figure beside its target; a model card
with the lines ``<!-- targets:start -->`` and ``<!-- targets:end -->`` gets the same table written between them.

``--measure-only FOLDER`` measures the targets of an already bundled model (with its own generation.json) and
writes nothing into the folder: the figures go to ``--report`` (or only to the screen).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from tformer import Translator
from tformer.data.corpus import multi30k, tatoeba
from tformer.evaluation.bleu import corpus_scores
from tformer.evaluation.everyday import everyday_check
from tformer.evaluation.names import NAME_FRAMES, name_copy_rate, unseen_names_check
from tformer.evaluation.numbers import numbers_check
from tformer.files import CHECKSUMS, write_checksums
from tformer.training.metrics import METRICS, MetricsLog


def score(translator: Translator, corpus, beam: int, length_penalty: float = 1.0, limit: int = 0) -> dict:
    src, ref = (corpus.src[:limit], corpus.tgt[:limit]) if limit else (corpus.src, corpus.tgt)
    start = time.time()
    hyps = translator.translate(src, beam=beam, length_penalty=length_penalty)
    s = corpus_scores(hyps, ref)
    return {"bleu": round(s.bleu, 2), "chrf": round(s.chrf, 2), "beam": beam, "length_penalty": length_penalty,
            "sentences": len(src), "seconds": round(time.time() - start, 1), "signature": s.bleu_signature}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, nargs="?", help="a finished training run (with final/, curves.png)")
    parser.add_argument("--out", type=Path, default=Path("models/multi30k-de-en"))
    parser.add_argument("--penalties", default="0.6,1.0,1.4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measure-only", type=Path, metavar="FOLDER",
                        help="measure the targets of a bundled model folder; write nothing into it")
    parser.add_argument("--report", type=Path, help="with --measure-only: write the figures to this JSON file")
    parser.add_argument("--stage", type=int, default=0,
                        help="the run is stage N of a staged training: also keep its recipe and curves as "
                             "recipe-stageN.json and curves-stageN.png and record its training time")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.measure_only:
        measure_only(args.measure_only, args.report)
        return
    if args.run is None:
        parser.error("give a training run folder, or --measure-only FOLDER")
    (args.out / CHECKSUMS).unlink(missing_ok=True)  # written again below, for the files that ship
    Translator.from_pretrained(args.run / "final").save_pretrained(args.out, dtype=torch.float16)
    shutil.copy(args.run / "curves.png", args.out / "curves.png")
    shutil.copy(args.run / "recipe.json", args.out / "recipe.json")
    if args.stage:
        shutil.copy(args.run / "curves.png", args.out / f"curves-stage{args.stage}.png")
        shutil.copy(args.run / "recipe.json", args.out / f"recipe-stage{args.stage}.json")
    translator = Translator.from_pretrained(args.out)  # evaluate what ships: the float16 weights, loaded as float32

    val, test, tat = multi30k("val"), multi30k("test_2016_flickr"), tatoeba("test")
    tuning = {lp: score(translator, val, 4, float(lp)) for lp in args.penalties.split(",")}
    best_lp = float(max(tuning, key=lambda lp: tuning[lp]["bleu"]))
    print("length penalty on multi30k val:", {lp: r["bleu"] for lp, r in tuning.items()}, "->", best_lp)
    translator.length_penalty = best_lp
    translator.save_pretrained(args.out, dtype=torch.float16)  # generation.json records the tuned penalty
    write_checksums(args.out, ["config.json", "generation.json", "model.safetensors", "tokenizer.json"])
    results = {
        "length_penalty_tuning_multi30k_val_beam4": {lp: r["bleu"] for lp, r in tuning.items()},
        "multi30k_val_greedy": score(translator, val, 1),
        "multi30k_test_greedy": score(translator, test, 1),
        "multi30k_test_beam4": score(translator, test, 4, best_lp),
        "multi30k_test_first200_beam4": score(translator, test, 4, best_lp, limit=200),
        "tatoeba_test_greedy": score(translator, tat, 1),
        "tatoeba_test_beam4": score(translator, tat, 4, best_lp),
        "held_out_names_copied_beam4": names_report(translator, best_lp),
        **everyday_reports(translator, best_lp),
        "examples": dict(zip(EXAMPLES, translator.translate(EXAMPLES, beam=4, length_penalty=best_lp))),
        "parameters": translator.model.num_parameters(),
        "float16_megabytes": round((args.out / "model.safetensors").stat().st_size / 1e6, 1),  # as shipped
    }
    if args.stage:
        results["stage"] = {"stage": args.stage, **training_time(args.run)}
    results["targets"] = targets(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_card_targets(args.out / "README.md", results["targets"])
    print(json.dumps(results, indent=2, ensure_ascii=False))


def training_time(run: Path) -> dict:
    """Updates and counted training minutes of a run (its metrics.jsonl; the checkpoint average's line at the very
    end has neither)."""
    return MetricsLog(run / METRICS).training_time()


def measure_only(folder: Path, report: Path | None) -> None:
    """The issue-19 targets of a bundled model as it is (its tuned length penalty), written nowhere but ``report``."""
    translator = Translator.from_pretrained(folder)
    lp = translator.length_penalty
    start = time.time()
    results = {
        "model": str(folder),
        "multi30k_test_beam4": score(translator, multi30k("test_2016_flickr"), 4, lp),
        "tatoeba_test_beam4": score(translator, tatoeba("test"), 4, lp),
        **everyday_reports(translator, lp),
        "parameters": translator.model.num_parameters(),
        "float16_megabytes": round(2 * translator.model.num_parameters() / 1e6, 1),  # a run's weights are float32
    }
    results["targets"] = targets(results)
    results["seconds"] = round(time.time() - start, 1)
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    if report:
        report.write_text(text)
    print(text)
    print(targets_table(results["targets"]))


def everyday_reports(translator: Translator, length_penalty: float) -> dict:
    """The everyday checks (beam 4): unseen names and places, numbers, everyday sentences, the seed example."""
    def translate(src: list[str]) -> list[str]:
        return translator.translate(src, beam=4, length_penalty=length_penalty)

    seed = {f"beam{b}": translator.translate(["Ich bin Piyush."], beam=b, length_penalty=length_penalty)[0]
            for b in (1, 4)}
    return {
        "unseen_names_and_places_beam4": unseen_names_check(translate).to_dict(),
        "numbers_beam4": numbers_check(translate).to_dict(max_failures=50),
        "everyday_beam4": everyday_check(translate).to_dict(),
        "seed_example": {**seed, "right": all(out in SEED_ANSWERS for out in seed.values())},
    }


SEED_ANSWERS = {"I am Piyush.", "I'm Piyush."}

# (results.json key, figure, target, what the target is); None = reported, no target.
TARGETS = (
    ("tatoeba_test_beam4", "bleu", 42.0, "Tatoeba test BLEU, beam 4"),
    ("tatoeba_test_beam4", "chrf", None, "Tatoeba test chrF, beam 4"),
    ("multi30k_test_beam4", "bleu", 39.0, "Multi30k test_2016_flickr BLEU, beam 4 (floor 38)"),
    ("unseen_names_and_places_beam4", "names.rate", 0.90, "unseen names copied (share of sentences)"),
    ("unseen_names_and_places_beam4", "vowel_initial_names.rate", None, "... of them vowel-initial names"),
    ("unseen_names_and_places_beam4", "translated_places.rate", None, "places with an English form translated"),
    ("unseen_names_and_places_beam4", "copied_places.rate", None, "other places copied"),
    ("numbers_beam4", "rate", 0.95, "sentences with every number right"),
    ("everyday_beam4", "bleu", None, "everyday sentences BLEU"),
    ("everyday_beam4", "acceptable_rate", None, "everyday sentences acceptable (share)"),
    ("seed_example", "right", True, '"Ich bin Piyush." -> "I am Piyush." / "I\'m Piyush." (beam 1 and 4)'),
    ("float16_megabytes", "", 40.0, "bundle size in MB (float16), at most"),
)


def targets(results: dict) -> list[dict]:
    """Each target's figure from ``results``, the target and whether it is met."""
    rows = []
    for key, path, target, what in TARGETS:
        try:
            value = results[key]
            for part in filter(None, path.split(".")):
                value = value[part]
        except KeyError:  # not measured: left out, not invented
            continue
        met = None if target is None else (value <= target if key == "float16_megabytes" else value >= target)
        rows.append({"what": what, "value": value, "target": target, "met": met})
    return rows


def targets_table(rows: list[dict]) -> str:
    lines = ["| figure | measured | target | met |", "| --- | --- | --- | --- |"]
    for r in rows:
        target = "" if r["target"] is None else ("yes" if r["target"] is True else r["target"])
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['what']} | {r['value']} | {target} | {met} |")
    return "\n".join(lines)


def write_card_targets(card: Path, rows: list[dict]) -> None:
    """Replace the table between the card's ``<!-- targets:start -->``/``<!-- targets:end -->`` lines, if any."""
    if not card.is_file():
        return
    text = card.read_text(encoding="utf-8")
    start, end = "<!-- targets:start -->", "<!-- targets:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        card.write_text(f"{head}{start}\n{targets_table(rows)}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")


def names_report(translator: Translator, length_penalty: float) -> dict:
    """Copy rate of real names never seen in training, in simple German sentence frames (beam 4)."""
    result = name_copy_rate(lambda src: translator.translate(src, beam=4, length_penalty=length_penalty))
    return {"copied": result.copied, "total": result.total, "rate": round(result.rate, 3),
            "frames": list(NAME_FRAMES), "failures": result.failures[:20]}


EXAMPLES = ["Ich bin Piyush.", "Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Wo ist der Bahnhof?",
            "Eine Frau in einem roten Kleid singt auf einer Bühne."]

if __name__ == "__main__":
    main()
