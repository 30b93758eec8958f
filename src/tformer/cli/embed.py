"""`tformer embed`: sentence embeddings for a file of texts, as .npy or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tformer.cli.numbers import positive_int

HELP = "Write sentence embeddings (mean-pooled, L2-normalised; as sentence-transformers) for a file of texts."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed", help=HELP,
        description=HELP + " One text per line; row i of the output belongs to line i. Cosine similarity of two "
        "embeddings is their dot product.",
    )
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="texts, one per line ('-' or nothing = "
                   "stdin)")
    p.add_argument("--out", required=True, help="output: X.npy (float32 array, texts x dimensions) or X.jsonl "
                   "({\"text\": ..., \"embedding\": [...]} per line)")
    p.add_argument("--model", default="minilm", help="checkpoint folder or short name (default: %(default)s = "
                   "sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="texts per model call (default: %(default)s)")
    p.add_argument("--max-length", type=positive_int, help="tokens per text; longer texts are truncated (default: the "
                   "checkpoint's max_seq_length, 256 for MiniLM)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.cli.io import read_input_lines
    from tformer.models.pipelines import SentenceEncoder

    out = Path(args.out)
    if out.suffix not in (".npy", ".jsonl", ".json"):
        raise ValueError(f"--out must end in .npy or .jsonl, got {out}")
    texts = read_input_lines(args.file)
    encoder = SentenceEncoder.from_pretrained(args.model)
    if args.max_length is not None:
        encoder.max_length = args.max_length
    embeddings = encoder.encode(texts, args.batch_size)  # (texts, d_model)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        import numpy as np

        np.save(out, embeddings.numpy().astype(np.float32))
    else:
        with open(out, "w", encoding="utf-8") as f:
            for text, row in zip(texts, embeddings.tolist()):
                f.write(json.dumps({"text": text, "embedding": row}, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} embeddings of dimension {embeddings.size(1)} to {out}", file=sys.stderr)
    return 0
