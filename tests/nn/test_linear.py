import pytest
import torch
import torch.nn.functional as F

from tformer.nn.linear import MAX_ROWS, Linear, TransposedWeight, use_transposed


@pytest.mark.parametrize("shape", [(256, 768), (64, 64), (96, 32)])  # (in, out): widening, square, narrowing
@pytest.mark.parametrize("rows", [1, 4, MAX_ROWS, MAX_ROWS + 1, 100])
@pytest.mark.parametrize("bias", [True, False])
def test_inference_equals_the_plain_product_at_every_row_count(shape, rows, bias):
    torch.manual_seed(0)
    layer = Linear(*shape, bias=bias)
    x = torch.randn(rows, 3, shape[0])[: max(rows // 3, 1)]  # (rows', 3, in), a view
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_path_choice_follows_the_measured_rule():
    x = torch.randn(4, 256)
    with torch.inference_mode():
        assert use_transposed(x, 256, 768) and use_transposed(x, 256, 256)
        assert not use_transposed(x, 1024, 256)  # narrowing: the plain product is faster
        assert not use_transposed(torch.randn(MAX_ROWS + 1, 256), 256, 768)
        assert use_transposed(torch.randn(500, 256), 256, 8000, max_rows=None)
    assert not use_transposed(x, 256, 768)  # gradients on: training never uses the copy


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
    assert cache(weight) is first and torch.equal(first, weight.t())
    weight.mul_(2)
    assert cache(weight) is not first and torch.equal(cache(weight), weight.t())
