"""`tformer export`: write a trained translation model in another library's format."""

from __future__ import annotations

import argparse

HELP = "Export a translation model folder to Hugging Face Marian or CTranslate2."
FORMATS = {
    "hf-marian": "a Hugging Face MarianMTModel folder (weights, config, tokenizer), needs transformers",
    "ctranslate2": "a CTranslate2 model folder (plus tokenizer.json), needs ctranslate2",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help=HELP,
        description=HELP + " The exported model computes the same translations as the tformer model. Formats: "
        + "; ".join(f"{name}: {what}" for name, what in FORMATS.items()) + ".",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="tformer model folder (config.json, model.safetensors, "
                   "tokenizer.json), e.g. models/multi30k-de-en")
    p.add_argument("--to", required=True, choices=sorted(FORMATS), help="output format")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    p.add_argument("--quantization", default=None, help="ctranslate2 only: weight type on disk, e.g. int8 "
                   "(default: float32; int8 can also be chosen when loading)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.quantization and args.to != "ctranslate2":
        raise ValueError(f"--quantization applies to --to ctranslate2 only, not {args.to}")
    try:
        if args.to == "hf-marian":
            from tformer.interop.marian import export_marian

            out = export_marian(args.model, args.out)
        else:
            from tformer.interop.ctranslate2 import export_ctranslate2

            out = export_ctranslate2(args.model, args.out, args.quantization)
    except ImportError as err:
        raise RuntimeError(f"--to {args.to} needs an optional package: {err}") from None
    print(f"wrote {args.to} model to {out}")
    return 0
