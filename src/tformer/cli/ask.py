"""`tformer ask`: answer a question from your own documents: retrieve passages from an index, read them, and
print the best answer with its source and passage."""

from __future__ import annotations

import argparse
import json

from tformer.cli.numbers import positive_int

HELP = "Answer a question from an index made by `tformer index`: retrieve passages, then find the answer in them."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ask", help=HELP,
        description=HELP + " The --passages best passages (hybrid search: embeddings + BM25) are read by the QA "
        "model, and the best span over all of them is the answer (ranked by its start + end logits plus 6 x its "
        "passage's retrieval score); it is printed with that score, its source and the passage, the answer "
        "marked [[like this]].",
    )
    p.add_argument("index", metavar="INDEX", help="index folder")
    p.add_argument("question", help="the question")
    p.add_argument("--model", default="squad", help="QA model folder, or 'squad' for the bundled MiniLM "
                   "fine-tuned on SQuAD (default: %(default)s)")
    p.add_argument("--passages", type=positive_int, default=5,
                   help="passages retrieved and read (default: %(default)s)")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid", help="retrieval (default: "
                   "%(default)s)")
    p.add_argument("--top-k", type=positive_int, default=1, help="answers to show (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object per answer")
    p.add_argument("--generate", action="store_true", help="instead of a span, let the chat model (default "
                   "SmolLM2-135M-Instruct) write a reply from the retrieved passages, told to use only them and to "
                   "cite them as [1], [2], ...; the sources are listed after it")
    p.add_argument("--chat-model", default="smollm2", help="chat model for --generate (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=positive_int, default=200, help="longest reply for --generate (default: "
                   "%(default)s)")
    p.set_defaults(run=run)


def run_generate(args: argparse.Namespace, index) -> int:
    from tformer.retrieval.generate import generate_reply

    hits = index.search(args.question, min(args.passages, 5), args.mode)  # a small model reads a few passages well
    index.close()
    if not hits:
        print("no passage matches the question")
        return 1
    reply = generate_reply(args.question, hits, args.chat_model, args.max_new_tokens)
    if args.json:
        print(json.dumps({"reply": reply.text, "sources": [{"n": i, "source": h.source, "passage": h.text}
                                                           for i, h in enumerate(reply.sources, 1)]},
                         ensure_ascii=False))
        return 0
    print(reply.text + "\n\nSources:")
    for i, hit in enumerate(reply.sources, 1):
        print(f"  [{i}] {hit.source} [{hit.start}:{hit.end}]")
    return 0


def run(args: argparse.Namespace) -> int:
    from tformer.cli.qa import highlight
    from tformer.models.qa_pipeline import QuestionAnswerer
    from tformer.retrieval.ask import ask
    from tformer.retrieval.index import PassageIndex

    for name in ("passages", "top_k"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.question.strip():
        raise ValueError("the question is empty")
    index = PassageIndex.open(args.index)
    if args.generate:
        return run_generate(args, index)
    reader = QuestionAnswerer.from_pretrained(args.model)
    answers, _ = ask(index, reader, args.question, args.passages, args.mode, args.top_k)
    index.close()
    if not answers:
        print("no passage matches the question")
        return 1
    for a in answers:
        start, end = a.document_span
        if args.json:
            print(json.dumps({"answer": a.text, "score": round(a.score, 4), "source": a.source, "start": start,
                              "end": end, "passage": a.passage.text}, ensure_ascii=False))
            continue
        print(f"{a.text}\n  score {a.score:.2f}, source {a.source} (characters {start}-{end})\n"
              f"  {highlight(a.passage.text, a.start, a.end, width=300)}")
    return 0
