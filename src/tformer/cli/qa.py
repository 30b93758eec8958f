"""`tformer qa`: the answer to a question, found as a span of a given text (extractive question answering)."""

from __future__ import annotations

import argparse
import json

from tformer.cli.numbers import positive_int

HELP = "Answer a question with the exact words of a text (the best span found by a fine-tuned BERT reader)."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qa", help=HELP,
        description=HELP + " Prints the answer, its score (start + end logit: higher is surer; compare scores "
        "for one question, not across questions) and where it is in the text (character offsets, line). Long "
        "texts are read in overlapping windows. The reader answers with a span even when the text does not hold "
        "the answer, so a low score deserves doubt.",
    )
    p.add_argument("question", help="the question")
    p.add_argument("--context", required=True, metavar="FILE", help="UTF-8 text file to find the answer in ('-' = "
                   "stdin)")
    p.add_argument("--model", default="squad", help="QA model folder, or 'squad' for the bundled MiniLM "
                   "fine-tuned on SQuAD (default: %(default)s)")
    p.add_argument("--top-k", type=positive_int, default=1, help="answers to show, best first (default: %(default)s)")
    p.add_argument("--max-answer-length", type=positive_int, default=30, help="longest answer in tokens (default: "
                   "%(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object per answer")
    p.set_defaults(run=run)


def read_context(path: str) -> str:
    from tformer.cli.io import read_input_lines

    text = "\n".join(read_input_lines(path))
    if not text.strip():
        raise ValueError(f"the context {path} is empty")
    return text


def highlight(text: str, start: int, end: int, width: int = 120) -> str:
    """The answer in [[ ]] with up to ``width`` characters of context around it, on one line."""
    left = text[max(0, start - width) : start]
    right = text[end : end + width]
    dots = ("..." if start > width else "", "..." if end + width < len(text) else "")
    return " ".join(f"{dots[0]}{left}[[{text[start:end]}]]{right}{dots[1]}".split())


def run(args: argparse.Namespace) -> int:
    from tformer.models.qa_pipeline import QuestionAnswerer

    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    context = read_context(args.context)
    reader = QuestionAnswerer.from_pretrained(args.model, max_answer_length=args.max_answer_length)
    for span in reader.answer(args.question, context, top_k=args.top_k):
        line = context.count("\n", 0, span.start) + 1
        if args.json:
            print(json.dumps({"answer": span.text, "score": round(span.score, 4), "start": span.start,
                              "end": span.end, "line": line}, ensure_ascii=False))
            continue
        print(f"{span.text}\n  score {span.score:.2f}, characters {span.start}-{span.end} (line {line})\n"
              f"  {highlight(context, span.start, span.end)}")
    return 0
