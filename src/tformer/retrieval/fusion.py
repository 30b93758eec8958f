"""Combining ranked lists from different retrievers (dense embeddings, BM25) into one ranking."""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60  # Cormack, Clarke and Buettcher (2009): 1 / (k + rank) with k = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[tuple[int, float]]], k: int = RRF_K,
                           weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Sum over rankings of weight / (k + rank) for each id (rank from 1); best first. Scores are ignored, only
    ranks count, so retrievers whose scores live on different scales combine without calibration."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def score_fusion(rankings: Sequence[Sequence[tuple[int, float]]],
                 weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Weighted sum of min-max normalised scores (an id missing from a ranking gets that ranking's 0); best first."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        low, span = min(scores), (max(scores) - min(scores)) or 1.0
        for item, score in ranking:
            fused[item] = fused.get(item, 0.0) + weight * (score - low) / span
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
