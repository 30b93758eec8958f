"""`tformer attention`: attention heatmaps for one sentence, or what one token attends to in every head."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from tformer.cli.numbers import positive_int

if TYPE_CHECKING:
    from tformer.inspect.attention import AttentionMaps

HELP = "Draw a model's attention on a sentence, or show which heads link one word to another."
DESCRIPTION = HELP + """ With a translation model (the default) the sentence is German: it is translated (greedy for
--beam 1, else beam search) and the returned translation's attention is captured. --kind cross (the default) shows
source words against generated words, an alignment picture; --kind self shows the encoder's self-attention;
--kind decoder the decoder's masked self-attention. With a BERT encoder (--model minilm, the default with
--from-token) there is only self-attention. Layers and heads are numbered from 1: --layer and --head together draw
one head, --layer alone that layer's heads, --head alone that head in every layer, neither everything.
With --from-token WORD (and a second sentence to compare with), it lists what WORD attends to in every head, ranks
the heads by how differently they treat WORD across the sentences, and draws the most telling heads large; with
--to-token (the word each sentence should link WORD to) it says how many heads make that link, or plainly that
none does. --preset runs one of the examples of the text this project follows: it-cat ('it' is the cat when it
was hungry, the milk when it was sweet), that-country ('that country' is France), sat-cat ('sat' attends to
'cat' in "The cat sat on the mat.")."""
DEFAULT_OUT = "attention.png"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tformer.inspect.focus import PRESETS

    p = sub.add_parser("attention", help=HELP, description=DESCRIPTION)
    p.add_argument("text", nargs="*", metavar="TEXT", help="the sentence; with --from-token, a second sentence to "
                   "compare with")
    p.add_argument("--out", default=DEFAULT_OUT, help="PNG file to write (default: %(default)s)")
    p.add_argument("--model", help="a translation model folder (default: the bundled models/multi30k-de-en, or "
                   "$TFORMER_MODEL), or a BERT checkpoint folder or short name ('minilm', the default with "
                   "--from-token)")
    p.add_argument("--layer", type=positive_int, help="only this layer (from 1)")
    p.add_argument("--head", type=positive_int, help="only this head (from 1)")
    p.add_argument("--kind", choices=["self", "cross", "decoder"], help="which attention: encoder self-attention, "
                   "encoder-decoder (cross) attention, or decoder masked self-attention (default: cross for "
                   "translation models, self with --from-token or BERT)")
    p.add_argument("--from-token", metavar="TOKEN", help="list, per layer and head, the tokens TOKEN attends to "
                   "most, and draw the heads that tell most about it")
    p.add_argument("--to-token", metavar="WORD", nargs="+", help="with --from-token: the word each sentence should "
                   "link TOKEN to, one per sentence (e.g. cat milk)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="one of the text's examples: sentences, token and "
                   "target words filled in")
    p.add_argument("--top", type=positive_int, default=3,
                   help="tokens listed per head with --from-token (default: %(default)s)")
    p.add_argument("--heads", type=positive_int, default=3,
                   help="heads drawn with --from-token, the most telling first (default: %(default)s)")
    p.add_argument("--beam", type=positive_int, default=4,
                   help="beam size for translating; 1 = greedy (default: %(default)s)")
    p.set_defaults(run=run)


def apply_preset(args: argparse.Namespace) -> None:
    """Fill the sentences, token and targets of ``--preset``; what the command line gives itself stays."""
    from tformer.inspect.focus import PRESETS

    if args.preset is None:
        return
    preset = PRESETS[args.preset]
    args.text = args.text or list(preset.sentences)
    args.from_token = args.from_token or preset.token
    args.to_token = args.to_token or list(preset.targets)
    print(f"preset {args.preset}: {preset.claim}")


def run(args: argparse.Namespace) -> int:
    apply_preset(args)
    if not args.text:
        raise ValueError("give a sentence (or --preset NAME)")
    if len(args.text) > (2 if args.from_token else 1):
        raise ValueError(f"expected one sentence{' (two with --from-token)' if args.from_token else ''}, got "
                         f"{len(args.text)}; quote a sentence that has spaces")
    if args.to_token and not args.from_token:
        raise ValueError("--to-token needs --from-token (the word that should link to it)")
    if args.to_token and len(args.to_token) != len(args.text):
        raise ValueError(f"--to-token needs one word per sentence: {len(args.text)} sentence(s), "
                         f"{len(args.to_token)} word(s)")
    model_name = args.model or ("minilm" if args.from_token else None)
    if is_translation_model(model_name):
        maps = translation_maps(args, model_name)
    else:
        maps = bert_maps(args, model_name)
    if args.from_token:
        return run_focus(args, maps)
    from tformer.viz.attention import plot_attention

    print(f"wrote {plot_attention(maps[0], args.out, args.layer, args.head)}")
    return 0


def run_focus(args: argparse.Namespace, maps: list[AttentionMaps]) -> int:
    """The listing (only --layer/--head when given), the most telling heads, the claim check, and their picture."""
    from tformer.inspect.focus import claim_report, focus, format_focus, format_ranking, rank_heads, select
    from tformer.viz.attention import plot_focus

    token = args.from_token
    focused = [select(focus(m, token, args.top), args.layer, args.head) for m in maps]
    print(format_focus(token, focused[0], focused[1] if len(focused) > 1 else None, tuple(m.text for m in maps)))
    ranks = rank_heads(maps, token, args.to_token, args.layer, args.head)
    print()
    print(format_ranking(ranks, token, max(args.heads, 5)))
    notes = claim_report(ranks, token, args.to_token) if args.to_token else []
    for line in notes:
        print(line)
    out = plot_focus(maps, token, ranks, args.out, args.heads, args.to_token, notes)
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
