"""`tformer classify`: label texts with a fine-tuned classifier (by default the bundled sentiment classifier)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tformer.cli.numbers import positive_int
from tformer.cli.options import add_device
from tformer.training.finetune import BEST, DEFAULT_OUT

DEFAULT_MODEL = f"{DEFAULT_OUT}/{BEST}"  # where `tformer finetune` writes; used when no classifier is bundled
HELP = "Classify texts (e.g. sentiment) with a fine-tuned model; prints each text's label and probability."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify", help=HELP,
        description=HELP + " With no TEXT, reads --input or stdin, one text per line, and writes exactly one line "
        "per input line, in order (an empty line gives an empty line). Output: LABEL<TAB>PROBABILITY.",
    )
    p.add_argument("text", nargs="*", metavar="TEXT", help="texts to classify (default: read --input or stdin)")
    p.add_argument("--model", help="a bundled classifier, 'sentiment' (SST-2: positive/negative) or 'spam' (SMS: "
                   "ham/spam), or a classifier folder written by `tformer finetune` (default: sentiment)")
    p.add_argument("--input", help="read texts from this file ('-' = stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per line: text, label, probability and "
                   "every label's probability")
    p.add_argument("--batch-size", type=positive_int, default=32, help="texts per model call (default: %(default)s)")
    p.add_argument("--max-length", type=positive_int, help="tokens per text; longer texts are truncated (default: the "
                   "model's maximum)")
    add_device(p)
    p.set_defaults(run=run)


def default_model() -> str | Path:
    """The bundled sentiment classifier, else the folder `tformer finetune` writes by default."""
    from tformer.models.classifiers import DEFAULT_CLASSIFIER, bundled_classifier, stored_on_base

    bundled = bundled_classifier(DEFAULT_CLASSIFIER)
    if stored_on_base(bundled):
        return bundled
    if Path(DEFAULT_MODEL).is_dir():
        return DEFAULT_MODEL
    raise FileNotFoundError(f"no classifier: the bundled one is missing from {bundled} and there is none at "
                            f"{DEFAULT_MODEL}; make one with `tformer finetune` (see docs/finetune-sst2.md) or pass "
                            "--model DIR")


def run(args: argparse.Namespace) -> int:
    from tformer.cli.io import input_texts
    from tformer.models.pipelines import TextClassifier

    model = args.model if args.model is not None else default_model()
    texts = input_texts(args.text, args.input)
    classifier = TextClassifier.from_pretrained(model, device=args.device)
    classifier.max_length = args.max_length
    real = [i for i, text in enumerate(texts) if text.strip()]
    probs = classifier.predict_proba([texts[i] for i in real], args.batch_size) if real else None
    rows = [json.dumps({"text": t, "label": None, "probability": None}) if args.json else "" for t in texts]
    for row, i in enumerate(real):
        p = probs[row]
        best = int(p.argmax())
        label, probability = classifier.labels[best], float(p[best])
        if args.json:
            every = {name: round(float(q), 6) for name, q in zip(classifier.labels, p)}
            rows[i] = json.dumps({"text": texts[i], "label": label, "probability": round(probability, 6),
                                  "probabilities": every}, ensure_ascii=False)
        else:
            rows[i] = f"{label}\t{probability:.4f}"
    for line in rows:
        print(line)
    return 0
