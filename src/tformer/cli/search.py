"""`tformer search`: the passages of an index that best match a query, with scores and sources."""

from __future__ import annotations

import argparse
import json
import textwrap

from tformer.cli.numbers import positive_int

HELP = "Search a passage index made by `tformer index`."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help=HELP,
        description=HELP + " Modes: 'dense' ranks by cosine similarity of sentence embeddings (meaning), 'bm25' by "
        "shared words (SQLite FTS5), 'hybrid' (default) adds the two scores, each scaled to 0..1 over the "
        "candidates, which finds more of the right passages than either alone (docs/qa.md has the measurements).",
    )
    p.add_argument("index", metavar="INDEX", help="index folder")
    p.add_argument("query", help="what to look for")
    p.add_argument("--top-k", type=positive_int, default=5, help="passages to show (default: %(default)s)")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid", help="(default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object per passage instead of text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.retrieval.index import PassageIndex

    index = PassageIndex.open(args.index)
    hits = index.search(args.query, args.top_k, args.mode)
    for rank, hit in enumerate(hits, start=1):
        if args.json:
            print(json.dumps({"rank": rank, **hit.__dict__}, ensure_ascii=False))
            continue
        print(f"{rank}. {hit.score:.4f}  {hit.source} [{hit.start}:{hit.end}]" + (f"  {hit.title}" if hit.title
                                                                                   else ""))
        print(textwrap.indent(textwrap.shorten(hit.text, 400, placeholder=" ..."), "   "))
    if not hits:
        print("no passage matches")
    index.close()
    return 0
