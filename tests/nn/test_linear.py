import pytest
import torch
import torch.nn.functional as F

from tformer.nn import kernels, native
from tformer.nn.linear import (
    FUSED_ACTIVATIONS,
    Linear,
    PackedWeight,
    activate,
    fast_linear,
    packed_products_available,
    product_form,
)

needs_packed = pytest.mark.skipif(not packed_products_available(), reason="PyTorch built without oneDNN")


@pytest.fixture(params=["row kernel", "no row kernel"])
def row_kernel(request, monkeypatch):
    """Each test twice: with the native extension's row kernel taking few rows (skipped where it cannot be built)
    and without it (a fresh install before the build, or TFORMER_NATIVE=0)."""
    ops = native.native_ops() if request.param == "row kernel" else None
    if request.param == "row kernel" and ops is None:
        pytest.skip("native extension not built here")
    monkeypatch.setattr(kernels, "_ops", ops)
    return ops is not None


@pytest.mark.parametrize("shape", [(256, 768), (64, 64), (96, 32), (16, 33), (8, 100)])  # widening, square,
# narrowing, odd, vocabulary-like (packed even at one row)
@pytest.mark.parametrize("rows", [1, 2, 4, 32, 100])
@pytest.mark.parametrize("bias", [True, False])
def test_inference_equals_the_plain_product_at_every_row_count(shape, rows, bias, row_kernel):
    torch.manual_seed(0)
    layer = Linear(*shape, bias=bias)
    x = torch.randn(rows, shape[0])
    strided = torch.randn(rows, 2 * shape[0])[:, ::2]  # not contiguous
    with torch.inference_mode():
        for inputs in (x, x.view(1, rows, -1), strided):
            expected = F.linear(inputs, layer.weight, layer.bias)
            torch.testing.assert_close(layer(inputs), expected, rtol=1e-5, atol=1e-5)
            assert layer(inputs).shape == expected.shape and layer(inputs).is_contiguous()
        # The same without a packed copy (what a weight made under inference_mode gets).
        plain = F.linear(x, layer.weight, layer.bias)
        torch.testing.assert_close(fast_linear(x, layer.weight, layer.bias, None), plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", sorted(FUSED_ACTIVATIONS))
@pytest.mark.parametrize("rows", [1, 5, 300])
def test_fused_activation_equals_the_activation_after_the_product(activation, rows):
    torch.manual_seed(0)
    layer = Linear(24, 40)
    x = torch.randn(2, rows, 24)
    reference = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}[activation]
    expected = reference(F.linear(x, layer.weight, layer.bias))
    with torch.inference_mode():
        torch.testing.assert_close(layer(x, activation=activation), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer(x, activation=activation), expected)  # training path
    assert torch.equal(activate(torch.tensor([-1.0, 2.0]), "relu"), torch.tensor([0.0, 2.0]))


def test_form_choice_follows_the_measured_rule(row_kernel):
    packed = "packed" if packed_products_available() else "plain"
    few = "rows" if row_kernel else packed
    with torch.inference_mode():
        assert product_form(torch.randn(1, 256), 256, 768) == "weight_first"
        assert product_form(torch.randn(1, 1, 1024), 1024, 256) == "weight_first"  # narrowing too
        assert product_form(torch.randn(1, 256), 256, 8000) == packed  # vocabulary projection: packed at one row
        assert product_form(torch.randn(4, 256), 256, 8000) == packed
        assert product_form(torch.randn(4, 256), 256, 768) == few  # 2-4 rows, a weight under 2^18 values
        assert product_form(torch.randn(1, 2, 256), 256, 256) == few
        assert product_form(torch.randn(3, 256), 256, 1024) == packed  # 2^18 values: read from memory
        assert product_form(torch.randn(5, 256), 256, 256) == packed
        assert product_form(torch.randn(32, 128, 384), 384, 1536) == packed
        assert product_form(torch.randn(4, 256, dtype=torch.float64), 256, 768) == "plain"
    assert product_form(torch.randn(4, 256), 256, 768) == "plain"  # gradients on: training never changes form


@needs_packed
def test_packed_copy_is_remade_after_an_optimiser_step_and_after_loading_weights():
    torch.manual_seed(0)
    layer = Linear(16, 48)
    x = torch.randn(3, 16)
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


@needs_packed
def test_packed_copy_is_cached_until_the_weight_changes_and_follows_a_replaced_weight():
    weight = torch.randn(6, 4)
    cache = PackedWeight()
    first = cache(weight)
    assert cache(weight) is first
    weight.mul_(2)  # in place: the version counter moves
    assert cache(weight) is not first
    layer = Linear(4, 6)
    x = torch.randn(3, 4)
    with torch.inference_mode():
        layer(x)
    layer.weight = torch.nn.Parameter(torch.randn(6, 4))  # a new tensor: a new copy, never the old one
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_same_parameters_and_state_dict_as_torch_linear_and_gradients_flow():
    layer, plain = Linear(8, 12), torch.nn.Linear(8, 12)
    assert layer.state_dict().keys() == plain.state_dict().keys() and isinstance(layer, torch.nn.Linear)
    layer(torch.randn(3, 8)).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_row_blocks_equal_the_columns_of_the_whole_product(rows):
    torch.manual_seed(0)
    layer = Linear(8, 24)
    x = torch.randn(rows, 8)
    for block in (slice(0, 8), slice(8, 24)):
        expected = layer(x)[:, block]
        torch.testing.assert_close(layer.rows(x, block), expected)
        with torch.inference_mode():
            torch.testing.assert_close(layer.rows(x, block), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_one_row_blocks_follow_the_thread_count_and_give_the_same_values(threads):
    previous = torch.get_num_threads()
    torch.manual_seed(0)
    layer = Linear(32, 96)
    try:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            for rows in (1, 3, 40):
                x = torch.randn(rows, 32)
                torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(previous)


def test_a_layer_made_under_inference_mode_works_and_follows_in_place_changes():
    with torch.inference_mode():  # its weight is an inference tensor: no version counter to key a copy on
        layer = Linear(16, 48)
        for rows in (1, 4):
            x = torch.randn(rows, 16)
            torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
            layer.weight.mul_(2)
            torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_availability_check_works_when_first_asked_under_inference_mode():
    with torch.inference_mode():
        assert packed_products_available.__wrapped__() == (
            torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        )


@needs_packed
def test_packed_copy_does_not_keep_a_replaced_weight_alive():
    import gc
    import weakref

    layer = Linear(64, 64)
    with torch.inference_mode():
        layer(torch.randn(3, 64))
        layer.rows(torch.randn(3, 64), slice(0, 32))
    old = weakref.ref(layer.weight)
    layer.weight = torch.nn.Parameter(torch.randn(64, 64))
    gc.collect()
    assert old() is None
    cache = PackedWeight()
    row_block = layer.weight[:32]
    first = cache(row_block)
    assert cache(layer.weight[:32]) is first  # a new view of the same rows reuses the copy
