import random

from tformer.data.batching import length_grouped_batches, token_budget_batches


def _lengths(n=2000, seed=0):
    rng = random.Random(seed)
    return [rng.randint(3, 60) for _ in range(n)]


def test_every_example_exactly_once_and_budget_respected():
    lengths = _lengths()
    batches = token_budget_batches(lengths, max_tokens=500, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 500 or len(b) == 1


def test_little_padding():
    lengths = _lengths()
    batches = token_budget_batches(lengths, max_tokens=1000, seed=1, epoch=0)
    real = sum(lengths)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded / real < 1.05


def test_order_depends_only_on_seed_and_epoch():
    lengths = _lengths()
    assert token_budget_batches(lengths, 800, 1, 3) == token_budget_batches(lengths, 800, 1, 3)
    assert token_budget_batches(lengths, 800, 1, 3) != token_budget_batches(lengths, 800, 1, 4)
    assert token_budget_batches(lengths, 800, 1, 3) != token_budget_batches(lengths, 800, 2, 3)


def test_length_grouped_batches_cover_everything_once_with_little_padding():
    lengths = _lengths()
    batches = length_grouped_batches(lengths, batch_size=16, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert sum(len(b) != 16 for b in batches) <= 1  # only the last group's remainder can be short
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    rng = random.Random(0)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    padded_random = sum(max(lengths[i] for i in order[k : k + 16]) * len(order[k : k + 16])
                        for k in range(0, len(order), 16))
    assert padded < 0.7 * padded_random
    assert batches == length_grouped_batches(lengths, batch_size=16, seed=1, epoch=0)
    assert batches != length_grouped_batches(lengths, batch_size=16, seed=1, epoch=1)
