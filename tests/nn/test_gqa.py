"""Grouped-query attention in the one MultiHeadAttention: equal to plain multi-head attention when every query
head has its own key/value head, and to repeating the key/value heads otherwise; the cache keeps kv heads only."""

import pytest
import torch

from tformer.nn import AttentionCache, MultiHeadAttention
from tformer.nn.rotary import RotaryEmbedding


def test_num_kv_heads_equal_to_num_heads_is_plain_mha():
    plain = MultiHeadAttention(24, 3).eval()
    grouped = MultiHeadAttention(24, 3, num_kv_heads=3).eval()
    grouped.load_state_dict(plain.state_dict())
    x = torch.randn(2, 5, 24)
    mask = torch.tensor([[True] * 5, [False, False, True, True, True]])
    for causal in (False, True):
        a = plain(x, key_padding_mask=mask, causal=causal, need_weights=True)
        b = grouped(x, key_padding_mask=mask, causal=causal, need_weights=True)
        torch.testing.assert_close(a.output, b.output)
        torch.testing.assert_close(a.weights, b.weights)


@pytest.mark.parametrize("num_kv_heads", [1, 2])
def test_gqa_equals_mha_with_repeated_key_value_heads(num_kv_heads):
    """A GQA layer equals a 6-head MHA whose key and value rows are the kv heads' rows, each repeated for the
    query heads of its group (query head h reads kv head h // group)."""
    d, heads, head_dim = 24, 6, 4
    gqa = MultiHeadAttention(d, heads, num_kv_heads=num_kv_heads).eval()
    mha = MultiHeadAttention(d, heads).eval()
    group = heads // num_kv_heads
    kv_dim = num_kv_heads * head_dim
    w = gqa.in_proj.weight.detach()
    wq, wk, wv = w[:d], w[d : d + kv_dim], w[d + kv_dim :]

    def repeat(rows: torch.Tensor) -> torch.Tensor:
        return rows.view(num_kv_heads, head_dim, d).repeat_interleave(group, dim=0).reshape(d, d)

    with torch.no_grad():
        mha.in_proj.weight.copy_(torch.cat([wq, repeat(wk), repeat(wv)]))
        mha.in_proj.bias.zero_()
        mha.out_proj.load_state_dict(gqa.out_proj.state_dict())
    x = torch.randn(2, 7, d)
    padding = torch.tensor([[True] * 7, [False, False] + [True] * 5])  # left padding in the second row
    for mask in (None, padding):
        for need_weights in (False, True):
            a = gqa(x, key_padding_mask=mask, causal=True, need_weights=need_weights)
            b = mha(x, key_padding_mask=mask, causal=True, need_weights=need_weights)
            torch.testing.assert_close(a.output, b.output, atol=1e-5, rtol=1e-5)
            if need_weights:
                torch.testing.assert_close(a.weights, b.weights, atol=1e-6, rtol=1e-5)


def test_cache_stores_kv_heads_and_equals_full_recomputation_with_rotary():
    attn = MultiHeadAttention(24, 6, bias=False, num_kv_heads=2).eval()
    rotary = RotaryEmbedding(4)
    x = torch.randn(2, 7, 24)
    positions = torch.arange(7).expand(2, 7)
    full = attn(x, causal=True, rotary=rotary(positions)).output
    cache = AttentionCache(static=False, capacity=3)
    steps = [attn(x[:, :4], causal=True, cache=cache, rotary=rotary(positions[:, :4])).output]
    for t in range(4, 7):
        steps.append(attn(x[:, t : t + 1], causal=True, cache=cache, rotary=rotary(positions[:, t : t + 1])).output)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.keys.shape == (2, 2, 7, 4)  # (batch, kv heads, len, head_dim)


def test_bad_head_counts_are_refused():
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        MultiHeadAttention(24, 6, num_kv_heads=4)
