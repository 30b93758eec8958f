import math

import pytest
import torch

from tformer.nn import AttentionCache, MultiHeadAttention, causal_mask, scaled_dot_product_attention


def test_reference_matches_hand_computed_example():
    q = torch.tensor([[[[1.0, 0.0]]]])  # (1, 1, 1, 2)
    k = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
    v = torch.tensor([[[[10.0, 0.0], [0.0, 20.0]]]])
    out, w = scaled_dot_product_attention(q, k, v)
    s = 1 / math.sqrt(2)
    w0 = math.exp(s) / (math.exp(s) + 1)
    torch.testing.assert_close(w, torch.tensor([[[[w0, 1 - w0]]]]))
    torch.testing.assert_close(out, torch.tensor([[[[10 * w0, 20 * (1 - w0)]]]]))


@pytest.mark.parametrize("with_mask", [False, True])
def test_fused_path_equals_reference(with_mask):
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    mask = torch.rand(2, 1, 5, 7) > 0.3 if with_mask else None
    ref, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    fused, none = scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    assert none is None and weights is not None
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_masked_rows_are_finite_and_masked_keys_get_zero(dtype, need_weights):
    q, k, v = (torch.randn(2, 3, 4, 8, dtype=dtype) for _ in range(3))
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    mask[0] = False  # every key of the first sequence is masked (a source made only of padding)
    mask[1, :, :, 2:] = False
    out, w = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
    assert torch.isfinite(out.float()).all()
    assert (out[0] == 0).all()
    if need_weights:
        assert (w[0] == 0).all() and (w[1, :, :, 2:] == 0).all()
        torch.testing.assert_close(w[1].float().sum(-1), torch.ones(3, 4), atol=1e-2, rtol=0)


def _torch_mha_like(mha: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    ref = torch.nn.MultiheadAttention(mha.d_model, mha.num_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mha.in_proj.weight)
        ref.in_proj_bias.copy_(mha.in_proj.bias)
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        ref.out_proj.bias.copy_(mha.out_proj.bias)
    return ref.eval()


@pytest.mark.parametrize("masks", ["none", "padding", "causal", "both"])
def test_self_attention_equals_torch_multihead_attention(masks):
    mha = MultiHeadAttention(24, 3).eval()
    with torch.no_grad():
        mha.in_proj.bias.normal_()
        mha.out_proj.bias.normal_()
    ref = _torch_mha_like(mha)
    x = torch.randn(2, 7, 24)
    keep = torch.ones(2, 7, dtype=torch.bool)
    keep[1, 5:] = False
    kpm = keep if masks in ("padding", "both") else None
    causal = masks in ("causal", "both")
    ours = mha(x, key_padding_mask=kpm, causal=causal, need_weights=True)
    theirs, theirs_w = ref(
        x, x, x,
        key_padding_mask=None if kpm is None else ~kpm,  # torch: True = ignore
        attn_mask=None if not causal else ~causal_mask(7),
        average_attn_weights=False,
    )
    torch.testing.assert_close(ours.output, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.weights, theirs_w, atol=1e-5, rtol=1e-5)
    fast = mha(x, key_padding_mask=kpm, causal=causal)
    torch.testing.assert_close(fast.output, theirs, atol=1e-5, rtol=1e-5)


def test_cross_attention_equals_torch_multihead_attention():
    mha = MultiHeadAttention(24, 3).eval()
    ref = _torch_mha_like(mha)
    x, memory = torch.randn(2, 5, 24), torch.randn(2, 7, 24)
    keep = torch.ones(2, 7, dtype=torch.bool)
    keep[0, 4:] = False
    ours = mha(x, memory, key_padding_mask=keep)
    theirs, _ = ref(x, memory, memory, key_padding_mask=~keep)
    torch.testing.assert_close(ours.output, theirs, atol=1e-5, rtol=1e-5)


def test_incremental_self_attention_with_cache_equals_full_recomputation():
    mha = MultiHeadAttention(24, 3).eval()
    x = torch.randn(2, 6, 24)
    full = mha(x, causal=True).output
    cache = AttentionCache(static=False, capacity=2)  # small capacity: exercises growth
    steps = [mha(x[:, t : t + 1], causal=True, cache=cache).output for t in range(6)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 6


def test_cross_attention_cache_computes_memory_projection_once():
    mha = MultiHeadAttention(24, 3).eval()
    x, memory = torch.randn(2, 3, 24), torch.randn(2, 7, 24)
    cache = AttentionCache(static=True)
    first = mha(x, memory, cache=cache).output
    again = mha(x, None, cache=cache).output  # no memory needed: keys/values come from the cache
    torch.testing.assert_close(first, again)


def test_heads_must_divide_d_model():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(24, 5)
