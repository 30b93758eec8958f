"""The row kernel (tformer/nn/csrc/row_product.h): products of a few rows by a weight packed into blocks of 16
outputs, as tformer.nn.linear's "rows" form and the C++ decoding step take them."""

import pytest
import torch
import torch.nn.functional as F

from tformer.nn import kernels, native
from tformer.nn.linear import ROW_KERNEL_WEIGHTS, Linear, product_form, row_kernel_takes

ops = native.native_ops()
pytestmark = pytest.mark.skipif(ops is None, reason="native extension not built here")


def multiply(x, weight, bias):
    return ops.row_product(x, ops.row_pack(weight), bias, weight.size(0))


@pytest.mark.parametrize("shape", [(7, 33), (16, 16), (24, 40), (64, 80), (256, 256), (96, 17)])  # (in, out):
# a partial last block, one block, several, groups of four blocks and a remainder
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 8, 13])  # groups of four rows and the rest
@pytest.mark.parametrize("bias", [True, False])
def test_equals_the_product_in_double_precision(shape, rows, bias):
    torch.manual_seed(rows)
    in_features, out_features = shape
    weight, x = torch.randn(out_features, in_features), torch.randn(rows, in_features)
    b = torch.randn(out_features) if bias else None
    expected = F.linear(x.double(), weight.double(), None if b is None else b.double())
    got = multiply(x, weight, b)
    assert got.shape == (rows, out_features) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5 * in_features ** 0.5)


def test_a_rows_result_does_not_depend_on_the_other_rows_of_the_batch():
    torch.manual_seed(0)
    weight, bias = torch.randn(72, 48), torch.randn(72)
    x = torch.randn(9, 48)
    together = multiply(x, weight, bias)
    for r in range(9):  # alone, and in batches of every size that starts with it
        assert torch.equal(multiply(x[r:r + 1], weight, bias)[0], together[r])
        assert torch.equal(multiply(x[r:], weight, bias)[0], together[r])
    order = torch.randperm(9)
    assert torch.equal(multiply(x[order], weight, bias), together[order])


def test_a_weight_split_over_threads_gives_the_same_values_as_one_thread():
    torch.manual_seed(0)
    weight, bias = torch.randn(1040, 512), torch.randn(1040)  # above the split threshold; 65 blocks
    x = torch.randn(4, 512)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = multiply(x, weight, bias)
        torch.set_num_threads(2)
        assert torch.equal(multiply(x, weight, bias), one)
    finally:
        torch.set_num_threads(previous)


def test_non_contiguous_rows_are_taken_as_their_values():
    torch.manual_seed(0)
    weight, bias = torch.randn(40, 24), torch.randn(40)
    wide = torch.randn(3, 48)
    assert torch.equal(multiply(wide[:, ::2], weight, bias), multiply(wide[:, ::2].contiguous(), weight, bias))


def test_inputs_that_do_not_fit_the_packed_weight_are_refused_with_their_shapes():
    weight = torch.randn(40, 24)
    packed = ops.row_pack(weight)
    with pytest.raises(RuntimeError, match=r"x \[3, 25\].*does not fit the packed weight \[3, 24, 16\]"):
        ops.row_product(torch.randn(3, 25), packed, None, 40)
    with pytest.raises(RuntimeError, match="40 values"):
        ops.row_product(torch.randn(3, 24), packed, torch.randn(39), 40)
    with pytest.raises(RuntimeError, match="float32"):
        ops.row_pack(weight.double())


def test_linear_takes_the_kernel_for_few_rows_and_remakes_its_copy_when_the_weight_changes(monkeypatch):
    monkeypatch.setattr(kernels, "_ops", ops)
    torch.manual_seed(0)
    layer = Linear(32, 48)
    x = torch.randn(3, 32)
    with torch.inference_mode():
        assert product_form(x, 32, 48) == "rows"
        assert torch.equal(layer(x), multiply(x, layer.weight, layer.bias))
        assert torch.equal(layer(x, activation="relu"), multiply(x, layer.weight, layer.bias).relu())
        block = slice(16, 48)
        assert torch.equal(layer.rows(x, block), multiply(x, layer.weight[block], layer.bias[block]))
    torch.optim.SGD(layer.parameters(), lr=0.5).zero_grad()
    with torch.no_grad():
        layer.weight.mul_(-1)  # in place: the copy must follow
    with torch.inference_mode():
        assert torch.equal(layer(x), multiply(x, layer.weight, layer.bias))


def test_the_rule_takes_two_to_four_rows_by_weights_that_stay_in_cache():
    assert row_kernel_takes(2, 256, 256) and row_kernel_takes(4, 256, 768)
    assert not row_kernel_takes(1, 256, 256) and not row_kernel_takes(5, 256, 256)
    assert not row_kernel_takes(4, 256, ROW_KERNEL_WEIGHTS // 256)


def test_the_kernel_is_registered_when_the_extension_loads_and_not_taken_without_it(monkeypatch):
    assert kernels.loaded() is ops  # native_ops() above registered it
    monkeypatch.setattr(kernels, "_ops", None)
    with torch.inference_mode():
        assert product_form(torch.randn(4, 32), 32, 48) != "rows"
        layer = Linear(32, 48)
    assert layer.row_packed_weight() is None
