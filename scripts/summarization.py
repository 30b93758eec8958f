"""Train the extractive summarizer's sentence scorer on SciTLDR-A and measure ROUGE on its dev set.

    python scripts/summarization.py embed       # MiniLM embeddings of every sentence (cached in runs/summarization)
    python scripts/summarization.py train       # fit the scorer -> src/tformer/summarize/scorer.json
    python scripts/summarization.py evaluate    # ROUGE-1/2/L F1 on dev.jsonl: baselines and the shipped scorer
    python scripts/summarization.py abstractive --limit 100   # the chat model on the first 100 dev abstracts
    python scripts/summarization.py prompts --limit 40   # a few instructions on 40 train abstracts: the best
    python scripts/summarization.py abstractive --limit 619 --instruction "..."   # the whole dev set, one prompt

Documents are taken as the dataset splits them into sentences. A sentence's training label is its ROUGE against
the TL;DR (mean of ROUGE-1/2/L F1, best over references); the scorer is trained listwise (a softmax over each
document's sentences towards the distribution softmax(label / temperature)). Model choice (linear or a small MLP)
uses a held-out 20% of train.jsonl; dev.jsonl is only scored, never used to fit or choose.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from tformer.data.corpus import data_dir
from tformer.evaluation.rouge import METRICS, corpus_rouge, rouge
from tformer.models.pipelines import SentenceEncoder
from tformer.summarize.abstractive import INSTRUCTION, AbstractiveSummarizer
from tformer.summarize.extractive import (
    FEATURES,
    SCORER_FILE,
    ExtractiveSummarizer,
    SentenceScorer,
    sentence_features,
)
from tformer.summarize.sentences import split_sentences

CACHE = Path("runs/summarization")


def read_split(split: str) -> list[dict]:
    path = data_dir() / "scitldr-a" / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def embed(args: argparse.Namespace) -> None:
    encoder = SentenceEncoder.from_pretrained("minilm")
    CACHE.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        docs = read_split(split)
        start = time.perf_counter()
        flat = [s for d in docs for s in d["source"]]
        vectors = encoder.encode(flat, batch_size=64)
        out, at = [], 0
        for d in docs:
            out.append(vectors[at : at + len(d["source"])].clone())
            at += len(d["source"])
        torch.save(out, CACHE / f"{split}-embeddings.pt")
        print(f"{split}: {len(flat)} sentences in {time.perf_counter() - start:.0f} s")


def load_split(split: str) -> tuple[list[dict], list[torch.Tensor]]:
    docs, vectors = read_split(split), torch.load(CACHE / f"{split}-embeddings.pt")
    return docs, vectors


def labels_of(doc: dict) -> torch.Tensor:
    return torch.tensor([rouge(s, doc["target"]).mean for s in doc["source"]])


def fit(docs, features, labels, hidden: int, epochs: int, temperature: float, seed: int = 0) -> SentenceScorer:
    torch.manual_seed(seed)
    scorer = SentenceScorer(len(FEATURES), hidden)
    every = torch.cat(features)
    scorer.mean.copy_(every.mean(dim=0))
    scorer.std.copy_(every.std(dim=0).clamp(min=1e-6))
    optimizer = torch.optim.AdamW(scorer.parameters(), lr=1e-2, weight_decay=1e-3)
    usable = [i for i in range(len(docs)) if len(docs[i]["source"]) > 1]
    for _ in range(epochs):
        random.Random(seed + _).shuffle(usable)
        for first in range(0, len(usable), 32):
            loss = 0.0
            for i in usable[first : first + 32]:
                target = torch.softmax(labels[i] / temperature, dim=0)
                loss = loss - (target * torch.log_softmax(scorer(features[i]), dim=0)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return scorer.eval()


@torch.no_grad()
def pick_rouge(docs, features, scorer: SentenceScorer) -> dict[str, float]:
    picks = [d["source"][int(scorer(f).argmax())] for d, f in zip(docs, features)]
    return corpus_rouge(picks, [d["target"] for d in docs]).as_percent()


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)  # tiny models: one thread is as fast
    docs, vectors = load_split("train")
    features = [sentence_features(d["source"], v) for d, v in zip(docs, vectors)]
    labels = [labels_of(d) for d in docs]
    order = list(range(len(docs)))
    random.Random(0).shuffle(order)
    held = set(order[: len(docs) // 5])
    fit_i = [i for i in range(len(docs)) if i not in held]
    held_i = sorted(held)

    def part(index, xs):
        return [xs[i] for i in index]

    results = {}
    for hidden in (0, 8, 16):
        for temperature in (0.02, 0.05):
            scorer = fit(part(fit_i, docs), part(fit_i, features), part(fit_i, labels), hidden, args.epochs,
                         temperature)
            results[(hidden, temperature)] = pick_rouge(part(held_i, docs), part(held_i, features), scorer)
            print(f"hidden {hidden} temperature {temperature}: held-out train {results[(hidden, temperature)]}")
    hidden, temperature = max(results, key=lambda key: results[key]["rouge1"])
    print(f"chosen: hidden {hidden}, temperature {temperature}; refit on all of train.jsonl")
    scorer = fit(docs, features, labels, hidden, args.epochs, temperature)
    scorer.to_json(args.out, trained_on="scitldr-a/train.jsonl (1,992 abstracts)", temperature=temperature,
                   epochs=args.epochs, held_out_rouge={f"hidden {h} temperature {t}": r
                                                       for (h, t), r in results.items()})
    print(f"wrote {args.out}")


def evaluate(args: argparse.Namespace) -> None:
    torch.set_num_threads(2)
    docs, vectors = load_split("dev")
    refs = [d["target"] for d in docs]
    learned = ExtractiveSummarizer(encoder=None, scorer=SentenceScorer.from_json(args.scorer))  # type: ignore[arg-type]
    central = ExtractiveSummarizer(encoder=None, ranking="centrality")  # type: ignore[arg-type]
    rows = {
        "lead-1 (first sentence)": [d["source"][0] for d in docs],
        "centrality (closest to the mean embedding)": [
            d["source"][int(central.score(d["source"], v).argmax())] for d, v in zip(docs, vectors)],
        "learned scorer (shipped, `tformer summarize`)": [
            d["source"][int(learned.score(d["source"], v).argmax())] for d, v in zip(docs, vectors)],
        "oracle (best single sentence)": [max(d["source"], key=lambda s, d=d: rouge(s, d["target"]).mean)
                                          for d in docs],
    }
    table = {name: corpus_rouge(picks, refs).as_percent() for name, picks in rows.items()}
    print(f"| method ({len(docs)} dev abstracts, one sentence) | " + " | ".join(METRICS) + " |")
    print("| --- | --- | --- | --- |")
    for name, scores in table.items():
        print(f"| {name} | " + " | ".join(f"{scores[m]:.1f}" for m in METRICS) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")


# Instructions tried by `prompts` on a slice of train.jsonl ({count}: "one sentence", {text}: the abstract).
PROMPTS = {
    "default": None,  # the package's INSTRUCTION
    "after": "{text}\n\nSummarize the text above in {count}. Reply with the summary only.",
    "tldr": "Write a TL;DR of the following text in {count}. Reply with the TL;DR only.\n\n{text}",
    "finding": "Read the text and state its main contribution or finding in {count}.\n\n{text}",
}


def write_summaries(summarizer, docs: list[dict], batch: int, max_minutes: float | None) -> list[str]:
    """The first sentence of the model's summary of each document (as `tformer summarize` keeps one sentence), in
    batches; past ``max_minutes`` the remaining documents are left out (the caller scores only those done)."""
    outputs: list[str] = []
    start = time.perf_counter()
    for first in range(0, len(docs), batch):
        if max_minutes is not None and time.perf_counter() - start > 60 * max_minutes:
            print(f"stopped after {len(outputs)} documents: --max-minutes {max_minutes} reached")
            break
        written = summarizer.complete([" ".join(d["source"]) for d in docs[first : first + batch]])
        outputs += [(split_sentences(w) or [w])[0] for w in written]
    return outputs


def load_summarizer(args: argparse.Namespace, instruction: str | None = None):
    torch.set_num_threads(args.threads)
    options = {"instruction": instruction.replace("\\n", "\n")} if instruction else {}
    return AbstractiveSummarizer.from_pretrained(args.chat_model, max_new_tokens=args.max_new_tokens, **options)


def abstractive(args: argparse.Namespace) -> None:
    summarizer = load_summarizer(args, args.instruction)
    docs, vectors = load_split(args.split)
    docs, vectors = docs[args.offset : args.offset + args.limit], vectors[args.offset : args.offset + args.limit]
    print(f"instruction: {summarizer.instruction!r}; max_new_tokens {args.max_new_tokens}; {args.threads} threads")
    start = time.perf_counter()
    outputs = write_summaries(summarizer, docs, args.batch, args.max_minutes)
    seconds = time.perf_counter() - start
    docs, vectors = docs[: len(outputs)], vectors[: len(outputs)]
    refs = [d["target"] for d in docs]
    learned = ExtractiveSummarizer(encoder=None, scorer=SentenceScorer.from_json(SCORER_FILE))  # type: ignore[arg-type]
    extractive = [d["source"][int(learned.score(d["source"], v).argmax())] for d, v in zip(docs, vectors)]
    table = {
        f"abstractive ({args.chat_model}, greedy)": corpus_rouge(outputs, refs).as_percent(),
        "learned extractive, same documents": corpus_rouge(extractive, refs).as_percent(),
        "lead-1, same documents": corpus_rouge([d["source"][0] for d in docs], refs).as_percent(),
    }
    print(f"{len(docs)} {args.split} abstracts from #{args.offset}; abstractive: {seconds:.0f} s "
          f"({seconds / max(len(docs), 1):.2f} s per abstract)")
    for name, scores in table.items():
        print(f"| {name} | " + " | ".join(f"{scores[m]:.1f}" for m in METRICS) + " |")
    for d, out in list(zip(docs, outputs))[:3]:
        print(f"- {out}\n  reference: {d['target'][0]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "offset": args.offset, "documents": len(docs),
                                               "instruction": summarizer.instruction, "seconds": round(seconds, 1),
                                               "threads": args.threads, "table": table, "outputs": outputs},
                                              indent=2) + "\n", encoding="utf-8")


def prompts(args: argparse.Namespace) -> None:
    """Each instruction of PROMPTS on the same slice of train.jsonl (dev stays unseen); the best by ROUGE-1."""
    summarizer = load_summarizer(args)
    docs = read_split("train")[args.offset : args.offset + args.limit]
    refs = [d["target"] for d in docs]
    results = {}
    for name, instruction in PROMPTS.items():
        summarizer.instruction = instruction or INSTRUCTION
        start = time.perf_counter()
        scores = corpus_rouge(write_summaries(summarizer, docs, args.batch, None), refs).as_percent()
        results[name] = {"instruction": summarizer.instruction, **scores,
                         "seconds": round(time.perf_counter() - start, 1)}
        print(f"| {name} | " + " | ".join(f"{scores[m]:.1f}" for m in METRICS) + f" | {results[name]['seconds']} s |",
              flush=True)
    best = max(results, key=lambda name: results[name]["rouge1"])
    print(f"best on train #{args.offset}..{args.offset + len(docs) - 1}: {best}")
    if args.json:
        Path(args.json).write_text(json.dumps({"documents": len(docs), "offset": args.offset, "best": best,
                                               "results": results}, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("embed").set_defaults(run=embed)
    p = sub.add_parser("train")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", type=Path, default=SCORER_FILE)
    p.set_defaults(run=train)
    p = sub.add_parser("evaluate")
    p.add_argument("--scorer", type=Path, default=SCORER_FILE)
    p.add_argument("--json", help="also write the table as JSON here")
    p.set_defaults(run=evaluate)
    for step, run in (("abstractive", abstractive), ("prompts", prompts)):
        p = sub.add_parser(step)
        p.add_argument("--limit", type=int, default=100 if step == "abstractive" else 40,
                       help="N abstracts (from --offset)")
        p.add_argument("--offset", type=int, default=0)
        if step == "abstractive":
            p.add_argument("--split", choices=("dev", "train"), default="dev", help="train: for trying prompts, so "
                           "that dev stays unseen")
            p.add_argument("--instruction", help="the user message, with {count} and {text} ('\\n' for a line "
                           "break; default: the package's)")
            p.add_argument("--max-minutes", type=float, help="stop writing summaries after this long and score "
                           "the documents done")
        p.add_argument("--chat-model", default="smollm2")
        p.add_argument("--max-new-tokens", type=int, default=80)
        p.add_argument("--batch", type=int, default=4)
        p.add_argument("--threads", type=int, default=2, help="1 is much faster on a machine busy with other jobs")
        p.add_argument("--json", help="also write the figures and outputs as JSON here")
        p.set_defaults(run=run)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
