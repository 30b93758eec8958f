"""Turn a finished training run into the bundled model: half-precision weights, measured figures, curves.

    python scripts/bundle_model.py runs/multi30k-de-en --out models/multi30k-de-en

Tunes the beam-search length penalty on Multi30k validation (never on test), then measures sacreBLEU and chrF
with greedy and beam search on Multi30k test_2016_flickr and the Tatoeba test split, and writes results.json
(read by the model card and the CI test of the bundled model).
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
from tformer.evaluation.names import NAME_FRAMES, name_copy_rate
from tformer.files import CHECKSUMS, write_checksums


def score(translator: Translator, corpus, beam: int, length_penalty: float = 1.0, limit: int = 0) -> dict:
    src, ref = (corpus.src[:limit], corpus.tgt[:limit]) if limit else (corpus.src, corpus.tgt)
    start = time.time()
    hyps = translator.translate(src, beam=beam, length_penalty=length_penalty)
    s = corpus_scores(hyps, ref)
    return {"bleu": round(s.bleu, 2), "chrf": round(s.chrf, 2), "beam": beam, "length_penalty": length_penalty,
            "sentences": len(src), "seconds": round(time.time() - start, 1), "signature": s.bleu_signature}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=Path("models/multi30k-de-en"))
    parser.add_argument("--penalties", default="0.6,1.0,1.4")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    (args.out / CHECKSUMS).unlink(missing_ok=True)  # written again below, for the files that ship
    Translator.from_pretrained(args.run / "final").save_pretrained(args.out, dtype=torch.float16)
    shutil.copy(args.run / "curves.png", args.out / "curves.png")
    shutil.copy(args.run / "recipe.json", args.out / "recipe.json")
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
        "examples": dict(zip(EXAMPLES, translator.translate(EXAMPLES, beam=4, length_penalty=best_lp))),
        "parameters": translator.model.num_parameters(),
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


def names_report(translator: Translator, length_penalty: float) -> dict:
    """Copy rate of real names never seen in training, in simple German sentence frames (beam 4)."""
    result = name_copy_rate(lambda src: translator.translate(src, beam=4, length_penalty=length_penalty))
    return {"copied": result.copied, "total": result.total, "rate": round(result.rate, 3),
            "frames": list(NAME_FRAMES), "failures": result.failures[:20]}


EXAMPLES = ["Ich bin Piyush.", "Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Wo ist der Bahnhof?",
            "Eine Frau in einem roten Kleid singt auf einer Bühne."]

if __name__ == "__main__":
    main()
