"""`tformer attention`: attention heatmaps for one sentence, or what one token attends to in every head."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from tformer.cli.numbers import positive_int

if TYPE_CHECKING:
    from tformer.inspect.attention import AttentionMaps

HELP = "Draw a model's attention on a sentence, or list what one token attends to."
DESCRIPTION = HELP + """ With a translation model (the default) the sentence is German: it is translated (greedy for
--beam 1, else beam search) and the returned translation's attention is captured. --kind cross (the default) shows
source words against generated words, an alignment picture; --kind self shows the encoder's self-attention;
--kind decoder the decoder's masked self-attention. With a BERT encoder (--model minilm, the default with
--from-token) there is only self-attention. Layers and heads are numbered from 1: --layer and --head together draw
one head, --layer alone that layer's heads, --head alone that head in every layer, neither everything."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attention", help=HELP, description=DESCRIPTION)
    p.add_argument("text", nargs="+", metavar="TEXT", help="the sentence; with --from-token, a second sentence to "
                   "compare with (heads whose top token differs are marked)")
    p.add_argument("--out", help="write the heatmaps to this PNG file")
    p.add_argument("--model", help="a translation model folder (default: the bundled models/multi30k-de-en, or "
                   "$TFORMER_MODEL), or a BERT checkpoint folder or short name ('minilm', the default with "
                   "--from-token)")
    p.add_argument("--layer", type=positive_int, help="only this layer (from 1)")
    p.add_argument("--head", type=positive_int, help="only this head (from 1)")
    p.add_argument("--kind", choices=["self", "cross", "decoder"], help="which attention: encoder self-attention, "
                   "encoder-decoder (cross) attention, or decoder masked self-attention (default: cross for "
                   "translation models, self with --from-token or BERT)")
    p.add_argument("--from-token", metavar="TOKEN", help="print, per layer and head, the tokens TOKEN attends to "
                   "most, with weights")
    p.add_argument("--top", type=positive_int, default=3,
                   help="tokens listed per head with --from-token (default: %(default)s)")
    p.add_argument("--beam", type=positive_int, default=4,
                   help="beam size for translating; 1 = greedy (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.out and not args.from_token:
        raise ValueError("nothing to do: give --out FILE.png for a picture, or --from-token TOKEN for a listing")
    if len(args.text) > (2 if args.from_token else 1):
        raise ValueError(f"expected one sentence{' (two with --from-token)' if args.from_token else ''}, got "
                         f"{len(args.text)}; quote a sentence that has spaces")
    model_name = args.model or ("minilm" if args.from_token else None)
    if is_translation_model(model_name):
        maps = translation_maps(args, model_name)
    else:
        maps = bert_maps(args, model_name)
    if args.from_token:
        from tformer.inspect.focus import focus, format_focus

        focused = [focus(m, args.from_token, args.top) for m in maps]
        print(format_focus(args.from_token, focused[0], focused[1] if len(focused) > 1 else None,
                           tuple(m.text for m in maps)))
    if args.out:
        from tformer.viz.attention import plot_attention

        out = plot_attention(maps[0], args.out, args.layer, args.head)
        print(f"wrote {out}")
    return 0


def is_translation_model(name: str | None) -> bool:
    """A tformer translation folder has a config with ``src_vocab_size``; anything else is taken as BERT."""
    if name is None:
        return True
    config = Path(name).expanduser() / "config.json"
    if not config.is_file():
        return False
    try:
        return "src_vocab_size" in json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False


def translation_maps(args: argparse.Namespace, model_name: str | None) -> list[AttentionMaps]:
    from tformer.decoding.translator import Translator
    from tformer.inspect.attention import translation_attention_maps

    translator = Translator.from_pretrained(model_name)
    kind = args.kind or ("self" if args.from_token else "cross")
    found = translation_attention_maps(translator, args.text, kind, args.beam, args.layer, args.head)
    for text, (trace, _) in zip(args.text, found):
        print(f"{text}\n-> {trace.translation}")
    return [maps for _, maps in found]


def bert_maps(args: argparse.Namespace, model_name: str) -> list[AttentionMaps]:
    from tformer.inspect.attention import encoder_attention_maps
    from tformer.models.bert import BertModel
    from tformer.text.pretrained import Tokenizer

    if args.kind not in (None, "self"):
        raise ValueError(f"--kind {args.kind}: a BERT encoder has only self-attention (--kind self)")
    model, tokenizer = BertModel.from_pretrained(model_name), Tokenizer.from_pretrained(model_name)
    return encoder_attention_maps(model, tokenizer, args.text, "self", args.layer, args.head)
