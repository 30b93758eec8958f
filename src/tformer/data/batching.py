"""Length-bucketed batches under a token budget, reshuffled each epoch from the seed."""

from __future__ import annotations

import random
from collections.abc import Sequence


def token_budget_batches(
    lengths: Sequence[int], max_tokens: int, seed: int, epoch: int, max_sentences: int = 1024
) -> list[list[int]]:
    """Group example indices into batches with ``len(batch) * longest <= max_tokens``.

    Examples are sorted by length (ties broken by a seeded shuffle) so batches hold similar lengths and little
    padding; the batch order is shuffled. The result depends only on (lengths, max_tokens, seed, epoch).
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: lengths[i])  # stable: the shuffle breaks ties
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for i in order:
        longest_if_added = max(longest, lengths[i])
        if batch and (longest_if_added * (len(batch) + 1) > max_tokens or len(batch) >= max_sentences):
            batches.append(batch)
            batch, longest_if_added = [], lengths[i]
        batch.append(i)
        longest = longest_if_added
    if batch:
        batches.append(batch)
    rng.shuffle(batches)
    return batches
