"""ROUGE-1/2/L F1 of summaries against reference summaries (Lin, 2004), through Google's ``rouge-score`` package
with Porter stemming, as the SciTLDR authors score their TL;DRs: each metric is the best over the references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

METRICS = ("rouge1", "rouge2", "rougeL")


@dataclass(frozen=True)
class RougeScores:
    """F1 of each metric, in [0, 1]."""

    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815 - the metric's own name

    def as_percent(self) -> dict[str, float]:
        return {name: round(100 * getattr(self, name), 2) for name in METRICS}

    @property
    def mean(self) -> float:
        """Average of the three F1s: one number to rank candidate sentences by."""
        return (self.rouge1 + self.rouge2 + self.rougeL) / 3


@lru_cache(maxsize=1)
def _scorer():
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ImportError("ROUGE needs the rouge-score package (pip install rouge-score)") from None
    return rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)


def rouge(summary: str, references: str | Sequence[str]) -> RougeScores:
    """ROUGE-1/2/L F1 of ``summary``; with several references, each metric takes its best reference."""
    references = [references] if isinstance(references, str) else list(references)
    if not references:
        raise ValueError("rouge needs at least one reference summary, got none")
    scores = [_scorer().score(reference, summary) for reference in references]  # score(target, prediction)
    return RougeScores(*(max(s[name].fmeasure for s in scores) for name in METRICS))


def corpus_rouge(summaries: Sequence[str], references: Sequence[Sequence[str]]) -> RougeScores:
    """Mean over documents of ``rouge`` (each document's best reference per metric)."""
    if len(summaries) != len(references):
        raise ValueError(f"{len(summaries)} summaries but {len(references)} reference lists")
    if not summaries:
        raise ValueError("corpus_rouge needs at least one summary")
    per_document = [rouge(s, refs) for s, refs in zip(summaries, references)]
    return RougeScores(*(sum(getattr(p, name) for p in per_document) / len(per_document) for name in METRICS))
