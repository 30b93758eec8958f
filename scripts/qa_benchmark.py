"""Retrieval and open-book question answering on the SQuAD v1.1 dev articles (docs/qa.md quotes its output).

Every dev paragraph is indexed (``tformer index --jsonl``'s code path, default passage settings); each of the
972 questions must bring back its own paragraph. Recall@k counts a question as found when a passage of its
paragraph is among the first k distinct paragraphs. Measured: dense (MiniLM cosine), BM25 (SQLite FTS5), their
fusion by reciprocal rank and by normalised scores, and, with --qa MODEL, re-ranking the fused candidates by the
QA model's best span score, the QA model's exact match / F1 given each question's own paragraph (oracle), and the
open-book exact match / F1 of `tformer ask`'s extracted answer (span logits + HYBRID_WEIGHT x retrieval score;
also by span logits alone, and the weight picked on half of the articles and scored on the other half).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/qa_benchmark.py [--qa models/qa-minilm-squad] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from tformer.data.squad import read_paragraphs, read_squad, squad_path
from tformer.evaluation.squad import squad_metrics
from tformer.retrieval.documents import Document
from tformer.retrieval.fusion import reciprocal_rank_fusion, score_fusion
from tformer.retrieval.index import PassageIndex


def paragraph_ranking(index: PassageIndex, ranked: list[tuple[int, float]], owner: dict[int, int]) -> list[int]:
    """Distinct paragraph numbers in ranked order."""
    seen: dict[int, None] = {}
    for pid, _ in ranked:
        seen.setdefault(owner[pid], None)
    return list(seen)


def recall(rankings: list[list[int]], gold: list[int], ks=(1, 5, 10)) -> dict[str, float]:
    return {f"recall@{k}": round(sum(g in r[:k] for r, g in zip(rankings, gold)) / len(gold), 4) for k in ks}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qa", help="QA model folder: also re-rank with it and score open-book answers")
    ap.add_argument("--candidates", type=int, default=50, help="candidates from each retriever before fusion")
    ap.add_argument("--rerank", type=int, default=5, help="fused candidates the QA model re-reads")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = squad_path("dev")
    paragraphs, questions = read_paragraphs(dev), read_squad(dev)
    docs = [Document(f"squad-dev#{i}", text, title) for i, (title, text) in enumerate(paragraphs)]
    figures: dict = {"paragraphs": len(docs), "questions": len(questions)}
    with tempfile.TemporaryDirectory() as tmp:
        index = PassageIndex.create(Path(tmp) / "index")
        start = time.perf_counter()
        report = index.update(docs)
        seconds = time.perf_counter() - start
        figures["passages"] = report.passages
        figures["index_passages_per_s"] = round(report.passages / seconds, 1)
        owner = {pid: int(src.split("#")[1]) for pid, src in index.db.execute(
            "SELECT p.id, s.source FROM passages p JOIN sources s ON s.id = p.source_id")}
        gold = [q.paragraph for q in questions]
        start = time.perf_counter()
        vectors = index.encoder().encode([q.question for q in questions])
        dense = [index.dense(q.question, args.candidates, v) for q, v in zip(questions, vectors)]
        figures["dense_queries_per_s"] = round(len(questions) / (time.perf_counter() - start), 1)
        start = time.perf_counter()
        bm25 = [index.bm25(q.question, args.candidates) for q in questions]
        figures["bm25_queries_per_s"] = round(len(questions) / (time.perf_counter() - start), 1)
        runs = {
            "dense": dense,
            "bm25": bm25,
            "hybrid_rrf": [reciprocal_rank_fusion([d, b]) for d, b in zip(dense, bm25)],
            "hybrid_scores": [score_fusion([d, b]) for d, b in zip(dense, bm25)],  # `search`'s hybrid
        }
        rankings = {name: [paragraph_ranking(index, r, owner) for r in ranked] for name, ranked in runs.items()}
        for name, ranked in rankings.items():
            figures[name] = recall(ranked, gold)
        if args.qa:
            figures.update(qa_figures(index, questions, runs["hybrid_scores"], owner, gold, args))
        index.close()
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def qa_figures(index, questions, fused, owner, gold, args) -> dict:
    """Re-rank the first ``args.rerank`` fused passages by the QA model's best span; open-book EM/F1."""
    from tformer.models.qa_pipeline import QuestionAnswerer

    qa = QuestionAnswerer.from_pretrained(args.qa)
    out: dict = {}
    start = time.perf_counter()
    oracle = {q.id: next((s.text for s in qa.answer(q.question, q.context)), "") for q in questions}
    out["oracle_paragraph"] = {k: round(v, 2) for k, v in squad_metrics(
        oracle, {q.id: q.answers for q in questions}).items()}
    out["oracle_questions_per_s"] = round(len(questions) / (time.perf_counter() - start), 2)
    reranked, fused_rrf, per_passage = [], [], []
    start = time.perf_counter()
    for q, ranked in zip(questions, fused):
        top = ranked[: args.rerank]
        hits = index.hits(top)
        spans = qa.answer(q.question, [h.text for h in hits], top_k=len(hits) * 3)
        first: dict[int, tuple[float, str]] = {}  # passage -> its best span's (score, text)
        for span in spans:
            first.setdefault(span.context, (span.score, span.text))
        order = sorted(range(len(hits)), key=lambda i: -first[i][0] if i in first else 1e9)
        reranked.append(paragraph_ranking(index, [top[i] for i in order], owner))
        # the QA score and the retrieval rank together: rank fusion of the two orders
        both = reciprocal_rank_fusion([top, [top[i] for i in order]])
        fused_rrf.append(paragraph_ranking(index, both, owner))
        per_passage.append([(h.score, *first[i]) for i, h in enumerate(hits) if i in first])
    seconds = time.perf_counter() - start
    out["qa_rerank"] = recall(reranked, gold)
    out["qa_rerank_rrf"] = recall(fused_rrf, gold)
    from tformer.retrieval.ask import HYBRID_WEIGHT  # what `tformer ask` ranks by: span logits + weight x retrieval

    out["ask_span_score_only"] = weighted_metrics(questions, per_passage, 0.0)
    out["ask_open_book"] = weighted_metrics(questions, per_passage, HYBRID_WEIGHT)
    out["ask_questions_per_s"] = round(len(questions) / seconds, 2)
    out["ask_weighted"] = retrieval_weight(questions, per_passage)
    return out


WEIGHTS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0)


def weighted_metrics(questions, per_passage, weight: float, keep=lambda q: True) -> dict:
    """EM/F1 (rounded) of the open-book answers of the questions ``keep`` accepts, each the span with the best
    span score + ``weight`` x its passage's retrieval score; ``per_passage`` holds (retrieval score, span score,
    text) of each question's best span per passage."""
    predictions = {q.id: max(cands, key=lambda c: c[1] + weight * c[0])[2] if cands else ""
                   for q, cands in zip(questions, per_passage) if keep(q)}
    metrics = squad_metrics(predictions, {q.id: q.answers for q in questions if keep(q)})
    return {k: round(v, 2) for k, v in metrics.items()}


def retrieval_weight(questions, per_passage) -> dict:
    """The retrieval weight picked on the first half of the dev articles (by title), reported on the other half and
    on all."""
    titles = sorted({q.title for q in questions})
    tuning = set(titles[: len(titles) // 2])
    by_weight = {w: weighted_metrics(questions, per_passage, w, lambda q: q.title in tuning)["f1"] for w in WEIGHTS}
    best = max(WEIGHTS, key=lambda w: by_weight[w])
    held_out = lambda q: q.title not in tuning  # noqa: E731
    return {"tuned_on": sorted(tuning), "f1_by_weight_on_tuning_half": {str(w): f for w, f in by_weight.items()},
            "weight": best, "held_out_half": weighted_metrics(questions, per_passage, best, held_out),
            "held_out_half_f1_without_weight": weighted_metrics(questions, per_passage, 0.0, held_out)["f1"],
            "all": weighted_metrics(questions, per_passage, best)}


if __name__ == "__main__":
    sys.exit(main())
