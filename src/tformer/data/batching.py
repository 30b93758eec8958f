"""Length-bucketed batches: under a token budget, reshuffled each epoch from the seed (training), or in fixed
length order (inference)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence


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


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group: int = 50
) -> list[list[int]]:
    """Batches of ``batch_size`` example indices of similar length, still in a random order.

    The examples are shuffled, cut into groups of ``group * batch_size``, each group is sorted by length and cut
    into batches, and the batches are shuffled: little padding, but every batch is still a random draw (unlike a
    global sort, which would put all the shortest examples together). Depends only on (lengths, batch_size, seed,
    epoch, group).
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    size = group * batch_size
    batches = []
    for start in range(0, len(order), size):
        chunk = sorted(order[start : start + size], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def length_sorted_chunks(lengths: Sequence[int], batch_size: int, longest_first: bool = False,
                         skip_empty: bool = True) -> Iterator[list[int]]:
    """Input indices in chunks of at most ``batch_size``, sorted by length (ties keep input order), so each chunk
    pads little; inference batches this way (``tformer.decoding.batching``, the BERT pipelines). With
    ``skip_empty`` (the default) zero-length inputs are left out: there is nothing to compute for them."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    todo = [i for i in range(len(lengths)) if lengths[i] or not skip_empty]
    todo.sort(key=(lambda i: -lengths[i]) if longest_first else (lambda i: lengths[i]))
    for start in range(0, len(todo), batch_size):
        yield todo[start : start + batch_size]
