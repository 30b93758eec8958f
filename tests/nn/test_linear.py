import pytest
import torch
import torch.nn.functional as F

from tformer.nn.linear import WEIGHT_FIRST_ROWS, Linear, TransposedWeight, fast_linear, product_form


@pytest.mark.parametrize("shape", [(256, 768), (64, 64), (96, 32), (16, 33)])  # widening, square, narrowing, odd
@pytest.mark.parametrize("rows", [1, 2, 4, WEIGHT_FIRST_ROWS[1], WEIGHT_FIRST_ROWS[1] + 1, 100, 200])
@pytest.mark.parametrize("bias", [True, False])
def test_inference_equals_the_plain_product_at_every_row_count(shape, rows, bias):
    torch.manual_seed(0)
    layer = Linear(*shape, bias=bias)
    x = torch.randn(rows, shape[0])
    strided = torch.randn(rows, 2 * shape[0])[:, ::2]  # not contiguous
    with torch.inference_mode():
        for inputs in (x, x.view(1, rows, -1), strided):
            expected = F.linear(inputs, layer.weight, layer.bias)
            torch.testing.assert_close(layer(inputs), expected, rtol=1e-5, atol=1e-5)
            assert layer(inputs).shape == expected.shape and layer(inputs).is_contiguous()
        # The same through the cache-less path a row block uses.
        plain = F.linear(x, layer.weight, layer.bias)
        torch.testing.assert_close(fast_linear(x, layer.weight, layer.bias, None), plain, rtol=1e-5, atol=1e-5)


def test_form_choice_follows_the_measured_rule():
    with torch.inference_mode():
        assert product_form(torch.randn(1, 256), 256, 768) == "transposed"
        assert product_form(torch.randn(1, 1024), 1024, 256) == "plain"  # narrowing, one row
        assert product_form(torch.randn(4, 256), 256, 768) == "weight_first"
        assert product_form(torch.randn(2, 16, 1024), 1024, 256) == "weight_first"  # 32 rows
        assert product_form(torch.randn(128, 256), 256, 8000) == "transposed"
        assert product_form(torch.randn(64, 1024), 1024, 256) == "plain"  # narrowing
        assert product_form(torch.randn(129, 256), 256, 768) == "plain"
    assert product_form(torch.randn(4, 256), 256, 768) == "plain"  # gradients on: training never changes form


def test_copy_is_remade_after_an_optimiser_step_and_after_loading_weights():
    torch.manual_seed(0)
    layer = Linear(16, 48)
    x = torch.randn(2, 16)
    with torch.inference_mode():
        before = layer(x)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(torch.randn(5, 16)).square().sum().backward()
    optimizer.step()
    with torch.inference_mode():
        after = layer(x)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, F.linear(x, layer.weight, layer.bias))
    other = Linear(16, 48)
    layer.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), other(x))


def test_same_parameters_and_state_dict_as_torch_linear_and_gradients_flow():
    layer, plain = Linear(8, 12), torch.nn.Linear(8, 12)
    assert layer.state_dict().keys() == plain.state_dict().keys() and isinstance(layer, torch.nn.Linear)
    layer(torch.randn(3, 8)).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    rows = slice(4, 8)
    x = torch.randn(3, 8)
    torch.testing.assert_close(layer.rows(x, rows), layer(x)[:, rows])


def test_transposed_weight_copy_is_cached_until_the_weight_changes():
    weight = torch.randn(6, 4)
    cache = TransposedWeight()
    first = cache(weight)
    assert cache(weight) is first and torch.equal(first[0], weight.t())
    halves = cache(weight, blocks=2)  # (2, in, out / 2): column blocks of the transposed weight
    assert halves.shape == (2, 4, 3) and torch.equal(torch.cat(list(halves), dim=1), weight.t())
    weight.mul_(2)
    assert torch.equal(cache(weight)[0], weight.t())


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_blocks_follow_the_thread_count_and_give_the_same_values(threads):
    previous = torch.get_num_threads()
    torch.manual_seed(0)
    layer = Linear(32, 96)
    try:
        for count in (threads, 1):  # a thread-count change remakes the blocked copy
            torch.set_num_threads(count)
            with torch.inference_mode():
                for rows in (1, 3, 40):
                    x = torch.randn(rows, 32)
                    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(previous)


def test_a_layer_made_under_inference_mode_works_and_follows_in_place_changes():
    with torch.inference_mode():  # its weight is an inference tensor: no version counter to key a copy on
        layer = Linear(16, 48)
        x = torch.randn(1, 16)
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
        layer.weight.mul_(2)
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
