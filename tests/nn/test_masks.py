"""tformer.nn.masks: one polarity (True = may attend), shapes, the causal mask and its cached-prefix offset."""

import math

import pytest
import torch
import torch.nn.functional as F

from tformer.nn.attention import scaled_dot_product_attention
from tformer.nn.masks import causal_mask, combine_masks, padding_mask, without_trivial_mask


def test_padding_mask_is_true_on_real_tokens():
    tokens = torch.tensor([[5, 6, 7, 0, 0], [8, 0, 9, 10, 0]])  # pad id 0; a pad in the middle stays a pad
    mask = padding_mask(tokens, pad_id=0)
    assert mask.dtype == torch.bool and mask.shape == tokens.shape
    assert torch.equal(mask, torch.tensor([[1, 1, 1, 0, 0], [1, 0, 1, 1, 0]], dtype=torch.bool))


@pytest.mark.parametrize("length", [1, 5, 7])
def test_causal_mask_lets_each_position_see_itself_and_the_past_only(length):
    mask = causal_mask(length)
    assert mask.dtype == torch.bool and mask.shape == (length, length)
    for i in range(length):
        for j in range(length):
            assert bool(mask[i, j]) == (j <= i)


@pytest.mark.parametrize(("new", "total"), [(1, 7), (3, 7), (5, 5)])
def test_causal_mask_for_new_positions_after_a_cached_prefix_is_the_last_rows_of_the_full_one(new, total):
    assert causal_mask(new, total).shape == (new, total)
    assert torch.equal(causal_mask(new, total), causal_mask(total)[total - new :])


def test_true_means_may_attend_in_our_attention_and_in_torchs_fused_kernel():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    mask = torch.rand(2, 1, 5, 7) > 0.4
    mask[..., 0] = True  # every query keeps a key
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
    for need_weights in (True, False):
        out, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        if weights is not None:
            assert bool((weights[~mask.expand_as(weights)] == 0).all())  # masked keys get no weight
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), expected, atol=1e-5, rtol=1e-5)


def test_combine_masks_broadcasts_to_batch_heads_queries_keys_and_ands_them():
    torch.manual_seed(0)
    keys = torch.rand(2, 7) > 0.3  # (batch, src_len)
    causal = causal_mask(5, 7)  # (tgt_len, src_len)
    per_batch = torch.rand(2, 5, 7) > 0.3  # (batch, tgt_len, src_len)
    assert combine_masks(None, None) is None
    assert combine_masks(keys, None).shape == (2, 1, 1, 7)
    assert combine_masks(None, causal).shape == (1, 1, 5, 7)
    assert combine_masks(None, per_batch).shape == (2, 1, 5, 7)
    both = combine_masks(keys, causal)
    assert both.shape == (2, 1, 5, 7)
    for b in range(2):
        for i in range(5):
            for j in range(7):
                assert bool(both[b, 0, i, j]) == bool(keys[b, j] and causal[i, j])
    assert torch.equal(combine_masks(keys, per_batch)[:, 0], keys[:, None, :] & per_batch)


def test_a_mask_that_hides_nothing_is_dropped_and_any_other_is_kept():
    assert without_trivial_mask(None) is None
    assert without_trivial_mask(torch.ones(2, 7, dtype=torch.bool)) is None
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 6] = False
    assert without_trivial_mask(mask) is mask
