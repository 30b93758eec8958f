"""Beam search's choice of continuations (tformer.decoding.search.top_of_sums): the native one-pass kernel and
torch.topk pick the same sums in the same order."""

import pytest
import torch

from tformer.decoding.search import top_of_sums
from tformer.nn import kernels, native

needs_native = pytest.mark.skipif(native.native_ops() is None, reason="native extension not built here")


def by_torch(scores, log_probs):
    n, k = scores.shape
    return (scores.reshape(-1, 1) + log_probs).view(n, -1).topk(k, dim=1)


def cases():
    torch.manual_seed(0)
    for n, k, vocab in ((1, 1, 7), (1, 4, 37), (3, 4, 1000), (2, 5, 8000), (1, 2, 16)):
        log_probs = torch.randn(n * k, vocab).log_softmax(-1)
        scores = torch.randn(n, k) * 3
        yield scores, log_probs
        first_only = scores.clone()
        first_only[:, 1:] = float("-inf")  # the first step: only the first hypothesis is expanded
        yield first_only, log_probs
        frozen = log_probs.clone()
        frozen[1::2] = float("-inf")  # finished hypotheses: EOS (id 2) at 0, nothing else
        frozen[1::2, 2] = 0.0
        yield scores, frozen


@needs_native
@pytest.mark.parametrize("case", range(15))
def test_the_kernel_picks_what_topk_picks(case):
    scores, log_probs = list(cases())[case]
    values, indices = top_of_sums(scores, log_probs)
    expected_values, expected_indices = by_torch(scores, log_probs)
    assert torch.equal(values, expected_values) and torch.equal(indices, expected_indices)
    assert values.shape == indices.shape == scores.shape and indices.dtype == torch.long


@needs_native
def test_equal_sums_come_lower_index_first():
    log_probs = torch.full((2, 40), -5.0)
    log_probs[0, 30] = log_probs[1, 3] = log_probs[0, 17] = -1.0  # three equal sums
    values, indices = top_of_sums(torch.zeros(1, 2), log_probs)
    assert indices.tolist() == [[17, 30]] and values.tolist() == [[-1.0, -1.0]]


def test_without_the_kernel_topk_gives_the_same(monkeypatch):
    monkeypatch.setattr(kernels, "_ops", None)
    for scores, log_probs in cases():
        values, indices = top_of_sums(scores, log_probs)
        expected_values, expected_indices = by_torch(scores, log_probs)
        assert torch.equal(values, expected_values) and torch.equal(indices, expected_indices)


@needs_native
def test_the_kernel_refuses_mismatched_shapes():
    with pytest.raises(RuntimeError, match=r"scores \(n, k\) and lp \(n \* k, vocab\)"):
        native.native_ops().top_of_sums(torch.zeros(2, 4), torch.zeros(7, 10))
