"""`tformer embed`: sentence embeddings for texts (arguments, a file or stdin), as JSON lines or .npy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tformer.cli.numbers import positive_int
from tformer.cli.options import add_device

HELP = "Print or write sentence embeddings (mean-pooled, L2-normalised; as sentence-transformers) of texts."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed", help=HELP,
        description=HELP + " Texts come from the arguments, else --input FILE, else stdin, one text per line; "
        "row i of the output belongs to text i. Without --out, prints one JSON object per text to stdout: "
        "{\"text\": ..., \"embedding\": [...]}. Cosine similarity of two embeddings is their dot product.",
    )
    p.add_argument("text", nargs="*", metavar="TEXT", help="texts to embed (default: read --input or stdin)")
    p.add_argument("--input", metavar="FILE", help="read texts from this file, one per line ('-' = stdin)")
    p.add_argument("--out", help="write to a file instead: X.npy (float32 array, texts x dimensions) or X.jsonl "
                   "(the JSON lines)")
    p.add_argument("--model", default="minilm", help="checkpoint folder or short name (default: %(default)s = "
                   "sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="texts per model call (default: %(default)s)")
    p.add_argument("--max-length", type=positive_int, help="tokens per text; longer texts are truncated (default: the "
                   "checkpoint's max_seq_length, 256 for MiniLM)")
    add_device(p)
    p.set_defaults(run=run)


def plural(count: int, noun: str) -> str:
    """``1 embedding``, ``3 embeddings``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def run(args: argparse.Namespace) -> int:
    from tformer.cli.io import input_texts
    from tformer.models.pipelines import SentenceEncoder

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix not in (".npy", ".jsonl", ".json"):
        raise ValueError(f"--out must end in .npy or .jsonl, got {out}")
    texts = input_texts(args.text, args.input)
    encoder = SentenceEncoder.from_pretrained(args.model, device=args.device)
    if args.max_length is not None:
        encoder.max_length = args.max_length
    embeddings = encoder.encode(texts, args.batch_size)  # (texts, d_model)
    if out is None:
        for text, row in zip(texts, embeddings.tolist()):
            print(json.dumps({"text": text, "embedding": row}, ensure_ascii=False))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        import numpy as np

        np.save(out, embeddings.numpy().astype(np.float32))
    else:
        with open(out, "w", encoding="utf-8") as f:
            for text, row in zip(texts, embeddings.tolist()):
                f.write(json.dumps({"text": text, "embedding": row}, ensure_ascii=False) + "\n")
    print(f"wrote {plural(len(texts), 'embedding')} of dimension {embeddings.size(1)} to {out}", file=sys.stderr)
    return 0
