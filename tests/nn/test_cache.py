import torch

from tformer.nn.cache import AttentionCache, KVCache


def _filled(batch: int, steps: int, capacity: int = 16) -> tuple[AttentionCache, torch.Tensor, torch.Tensor]:
    cache = AttentionCache(static=False, capacity=capacity)
    keys, values = torch.randn(batch, 2, steps, 4), torch.randn(batch, 2, steps, 4)
    for t in range(steps):  # one position per step, as decoding does
        cache.update(keys[:, :, t : t + 1], values[:, :, t : t + 1])
    return cache, keys, values


def test_select_keeps_the_named_rows_in_order_step_after_step():
    torch.manual_seed(0)
    cache, keys, values = _filled(batch=5, steps=3)
    expected_k, expected_v = keys, values
    for _ in range(4):  # several reorders in a row reuse the spare buffer: results must stay exact
        index = torch.randint(0, 5, (5,))
        cache.select(index)
        expected_k, expected_v = expected_k[index], expected_v[index]
        torch.testing.assert_close(cache.keys, expected_k, rtol=0, atol=0)
        torch.testing.assert_close(cache.values, expected_v, rtol=0, atol=0)
        new_k, new_v = torch.randn(5, 2, 1, 4), torch.randn(5, 2, 1, 4)
        cache.update(new_k, new_v)  # and appending after a reorder lands at the right position
        expected_k, expected_v = torch.cat([expected_k, new_k], 2), torch.cat([expected_v, new_v], 2)
        torch.testing.assert_close(cache.keys, expected_k, rtol=0, atol=0)


def test_select_to_fewer_rows_and_growth_past_capacity():
    torch.manual_seed(1)
    cache, keys, _ = _filled(batch=4, steps=3, capacity=4)
    cache.select(torch.tensor([3, 1]))
    torch.testing.assert_close(cache.keys, keys[[3, 1]], rtol=0, atol=0)
    extra = torch.randn(2, 2, 3, 4)
    cache.update(extra, extra)  # 6 positions > capacity 4: the buffer grows
    torch.testing.assert_close(cache.keys, torch.cat([keys[[3, 1]], extra], 2), rtol=0, atol=0)
    cache.select(torch.tensor([1, 1]))
    assert cache.keys.shape == (2, 2, 6, 4) and torch.equal(cache.keys[0], cache.keys[1])


def test_kv_cache_reorder_moves_self_attention_only():
    cache = KVCache(num_layers=2, capacity=8)
    memory_kv = torch.randn(3, 2, 5, 4)
    for layer in range(2):
        cache.cross_attn[layer].update(memory_kv, memory_kv)
        cache.self_attn[layer].update(torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4))
    before = cache.self_attn[0].keys.clone()
    cache.reorder(torch.tensor([2, 2, 0]))
    torch.testing.assert_close(cache.self_attn[0].keys, before[[2, 2, 0]], rtol=0, atol=0)
    assert torch.equal(cache.cross_attn[1].keys, memory_kv)
