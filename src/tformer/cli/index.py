"""`tformer index`: cut documents into passages, embed them and store them in a searchable index folder."""

from __future__ import annotations

import argparse
import sys
import time

from tformer.cli.numbers import non_negative_int, positive_int

HELP = "Build or update a passage index of your documents for `tformer search` and `tformer ask`."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index", help=HELP,
        description=HELP + " Each document is cut into passages of whole sentences (up to --max-tokens tokens, "
        "each repeating the last --overlap sentences of the one before), embedded with the sentence encoder and "
        "stored in INDEX: SQLite for the passages, their sources and a BM25 word index, FAISS for the vectors. "
        "Running it again on the same INDEX adds new documents and re-embeds only the ones whose content changed. "
        "Empty, binary and non-UTF-8 files are skipped with a warning. An interrupted run leaves the index as it "
        "was.",
    )
    p.add_argument("docs", nargs="+", metavar="DOC", help=".txt/.md files, or folders searched for them")
    p.add_argument("--out", required=True, metavar="INDEX", help="index folder (created, or updated if it exists)")
    p.add_argument("--jsonl", action="store_true", help="DOCs are JSON-lines files: one document per line, "
                   "{\"text\": ..., \"id\": ..., \"title\": ...} (id and title optional)")
    p.add_argument("--model", default="minilm", help="sentence encoder: checkpoint folder or short name (default: "
                   "%(default)s = sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--hnsw", action="store_true", help="approximate nearest-neighbour search (HNSW graph) instead "
                   "of exact search: for collections of hundreds of thousands of passages")
    p.add_argument("--max-tokens", type=positive_int, help="tokens per passage (default: the encoder's window, 254 for "
                   "MiniLM)")
    p.add_argument("--overlap", type=non_negative_int, default=1,
                   help="sentences repeated between consecutive passages "
                   "(default: %(default)s)")
    p.add_argument("--remove", nargs="+", default=[], metavar="SOURCE", help="also remove these sources (as "
                   "listed by `tformer search`) from the index")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="passages per encoder call (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.retrieval.documents import read_documents
    from tformer.retrieval.index import PassageIndex

    docs = read_documents(args.docs, jsonl=args.jsonl)
    if not docs and not args.remove:
        raise ValueError("no documents to index (every file was skipped; see the warnings above)")
    index = PassageIndex.create(args.out, args.model, "hnsw" if args.hnsw else "flat", args.max_tokens,
                                args.overlap)
    start = time.perf_counter()
    report = index.update(docs, args.batch_size)
    seconds = time.perf_counter() - start
    removed = index.remove(args.remove) if args.remove else 0
    rate = f", {report.passages / seconds:.1f} passages/s" if report.passages else ""
    info = index.describe()
    print(f"{args.out}: {report.added} new, {report.changed} changed, {report.unchanged} unchanged"
          + (f", {removed} removed" if removed else "") + f" document(s); {report.passages} passage(s) embedded in "
          f"{seconds:.1f} s{rate}; the index holds {info['passages']} passages from {info['sources']} sources",
          file=sys.stderr)
    index.close()
    return 0
