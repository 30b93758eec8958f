import math

import pytest
import torch

from tformer.nn import AttentionCache, MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tformer.nn import attention as attention_module


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


@pytest.mark.parametrize("head_dim", [8, 32, 64])
def test_fused_attention_under_bf16_autocast_runs_small_heads_in_float32(monkeypatch, head_dim):
    """Heads of at most FLOAT32_HEAD_DIM features reach the kernel in float32 (faster on the CPU), larger ones in
    bfloat16; either way the output is bfloat16, as autocast makes it, and close to the float32 reference."""
    seen = []  # the dtype each kernel call computes in: the inputs' own, or autocast's where it is on
    kernel = attention_module.F.scaled_dot_product_attention
    attention_module.fused_kernel_zeroes_masked_rows("cpu")  # its probe call (cached) stays out of `seen`

    def spy(q, k, v, **kwargs):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else q.dtype)
        return kernel(q, k, v, **kwargs)

    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, head_dim) for _ in range(3))
    mask = causal_mask(6)[None, None]
    ref, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    small = head_dim <= attention_module.FLOAT32_HEAD_DIM
    assert seen == [torch.float32 if small else torch.bfloat16]
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=3e-2 if not small else 1e-2, rtol=0)
    seen.clear()
    scaled_dot_product_attention(q, k, v, mask, need_weights=False)  # no autocast: the inputs' own dtype
    assert seen == [torch.float32]


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


def native_ops_or_skip():
    from tformer.nn import native

    ops = native.native_ops()
    if ops is None:
        pytest.skip("native extension not built here")
    return ops


@pytest.mark.parametrize("batch,heads,keys,head_dim", [(1, 1, 1, 8), (4, 4, 13, 64), (2, 6, 40, 64), (3, 2, 7, 12)])
def test_one_query_kernel_equals_the_reference(batch, heads, keys, head_dim):
    ops = native_ops_or_skip()
    torch.manual_seed(keys)
    q = torch.randn(batch, heads, 1, head_dim)
    cache = torch.randn(2, batch, heads, keys + 5, head_dim)  # keys and values inside a larger buffer, as cached
    k, v = cache[0, :, :, :keys], cache[1, :, :, :keys]
    mask = torch.rand(batch, 1, 1, keys) > 0.3
    mask[0, ..., 0] = True
    if batch > 1:
        mask[1] = False  # a sentence with no key left: zeros, as the fused kernel gives
    for m in (None, mask):
        expected, _ = scaled_dot_product_attention(q, k, v, m, need_weights=True)
        got = ops.decode_attention(q, k, v, m)
        assert got.shape == (batch, heads, 1, head_dim) and torch.isfinite(got).all()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    if batch > 1:
        assert torch.equal(ops.decode_attention(q, k, v, mask)[1], torch.zeros(heads, 1, head_dim))


def test_one_query_attention_takes_the_kernel_in_inference_only(monkeypatch):
    from tformer.nn import attention, kernels

    ops = native_ops_or_skip()
    monkeypatch.setattr(kernels, "_ops", ops)
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 1, 16), torch.randn(2, 4, 9, 16), torch.randn(2, 4, 9, 16)
    with torch.inference_mode():
        assert attention.one_query_kernel_applies(q, k, v, None)
        out, _ = scaled_dot_product_attention(q, k, v, need_weights=False)
        assert torch.equal(out, ops.decode_attention(q, k, v, None))
        assert not attention.one_query_kernel_applies(torch.randn(2, 4, 3, 16), k, v, None)  # several queries
        assert not attention.one_query_kernel_applies(q.double(), k.double(), v.double(), None)
        batch = attention.ONE_QUERY_PAIRS + 1  # one head each: a large batch
        wide_q, wide_kv = torch.randn(batch, 1, 1, 16), torch.randn(batch, 1, 9, 16)
        assert not attention.one_query_kernel_applies(wide_q, wide_kv, wide_kv, None)
    assert not attention.one_query_kernel_applies(q, k, v, None)  # gradients on: training keeps PyTorch's kernel
    monkeypatch.setattr(kernels, "_ops", None)
    with torch.inference_mode():
        assert not attention.one_query_kernel_applies(q, k, v, None)


def test_one_query_kernel_refuses_mismatched_inputs_with_their_shapes():
    ops = native_ops_or_skip()
    with pytest.raises(RuntimeError, match=r"do not match q \[2, 4, 1, 16\]"):
        ops.decode_attention(torch.randn(2, 4, 1, 16), torch.randn(2, 3, 9, 16), torch.randn(2, 3, 9, 16), None)
    with pytest.raises(RuntimeError, match="mask must be bool"):
        ops.decode_attention(torch.randn(1, 1, 1, 8), torch.randn(1, 1, 2, 8), torch.randn(1, 1, 2, 8),
                             torch.ones(1, 1, 1, 2))
