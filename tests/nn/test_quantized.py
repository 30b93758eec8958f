import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tformer.nn.fast import fast_paths
from tformer.nn.quantized import (
    Int8Linear,
    Int8WeightOnlyLinear,
    quantize_linear_layers,
    quantize_rows,
    weight_only_kernel_unavailable,
)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:  # ||got - expected|| / ||expected||
    return float((got - expected).detach().norm() / expected.detach().norm())


def test_int8_linear_approximates_the_float_layer():
    linear = nn.Linear(24, 37)
    x = torch.randn(3, 5, 24)  # (batch, len, in_features)
    got = Int8Linear.from_linear(linear)(x)
    assert got.shape == (3, 5, 37)
    assert relative_error(got, linear(x)) < 0.02


def test_row_blocks_compute_the_same_rows_as_the_whole_layer():
    linear = nn.Linear(24, 3 * 24)
    x = torch.randn(2, 7, 24)
    int8 = Int8Linear.from_linear(linear, blocks=(24,))
    whole = int8(x)
    assert whole.shape == (2, 7, 72) and relative_error(whole, linear(x)) < 0.02
    torch.testing.assert_close(int8(x, slice(0, 24)), whole[..., :24])
    torch.testing.assert_close(int8(x, slice(24, 72)), whole[..., 24:])
    with pytest.raises(ValueError, match="not one of this layer's blocks"):
        int8(x, slice(0, 48))


def test_quantize_linear_layers_replaces_every_linear_in_place():
    module = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 4)))
    x = torch.randn(5, 8)
    expected = module(x)
    quantize_linear_layers(module)
    assert not any(isinstance(m, nn.Linear) for m in module.modules())
    assert sum(isinstance(m, Int8Linear) for m in module.modules()) == 2
    assert relative_error(module(x), expected) < 0.05


def test_packed_rows_gives_the_block_that_rows_uses():
    linear = nn.Linear(24, 3 * 24)
    int8 = Int8Linear.from_linear(linear, blocks=(24,))
    x = torch.randn(4, 24)
    packed = int8.packed_rows(slice(24, 72))
    torch.testing.assert_close(torch.ops.quantized.linear_dynamic(x, packed, True), int8.rows(x, slice(24, 72)))
    with pytest.raises(ValueError, match="not one of this layer's blocks"):
        int8.packed_rows()  # two blocks: no single packed weight for the whole layer
    assert Int8Linear.from_linear(nn.Linear(24, 5)).packed_rows() is not None


# ---------------------------------------------------------------------------------------------- weight-only int8


def test_rows_are_rounded_to_int8_with_one_scale_each():
    weight = torch.randn(7, 48) * torch.logspace(-3, 1, 7)[:, None]  # rows of very different sizes
    qweight, scales = quantize_rows(weight)
    assert qweight.dtype == torch.int8 and scales.shape == (7,)
    assert int(qweight.abs().max(dim=1).values.min()) == 127  # every row uses the whole range
    assert ((qweight.float() * scales[:, None] - weight).abs() <= scales[:, None] / 2 + 1e-7).all()


@pytest.mark.parametrize("in_features", [48, 24])  # 24: not a multiple of 16, the kernel is not used
def test_weight_only_product_equals_the_dequantized_weight_product(in_features):
    linear = nn.Linear(in_features, 37)
    x = torch.randn(3, 5, in_features)  # (batch, len, in_features)
    int8 = Int8WeightOnlyLinear.from_linear(linear, compute_dtype=torch.float32)
    expected = F.linear(x, int8.dequantized_weight(), linear.bias)
    got = int8(x)
    assert got.shape == (3, 5, 37) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert relative_error(got, linear(x)) < 0.02  # and close to the float layer itself
    assert bool(weight_only_kernel_unavailable(x.view(-1, in_features))) == (in_features % 16 != 0)


def test_bfloat16_compute_rounds_only_the_input_and_output():
    linear = nn.Linear(48, 37)
    x = torch.randn(4, 48)
    int8 = Int8WeightOnlyLinear.from_linear(linear)  # compute_dtype bfloat16, the default
    expected = F.linear(x.bfloat16().float(), int8.dequantized_weight(), linear.bias)
    got = int8(x)
    assert got.dtype == torch.float32
    assert relative_error(got, expected) < 1e-2
    assert int8(x.bfloat16()).dtype == torch.bfloat16  # the output comes back in the input's dtype


def test_kernel_equals_the_reference_path():
    int8 = Int8WeightOnlyLinear.from_linear(nn.Linear(64, 40))
    x = torch.randn(2, 3, 64)
    fast = int8(x)
    with fast_paths(False):
        plain = int8(x)
    torch.testing.assert_close(fast, plain, rtol=1e-2, atol=1e-2)  # bfloat16 outputs, other summation order


def test_weight_only_rows_and_activation():
    linear = nn.Linear(32, 3 * 16)
    int8 = Int8WeightOnlyLinear.from_linear(linear, compute_dtype=torch.float32)
    x = torch.randn(2, 7, 32)
    whole = int8(x)
    for rows in (slice(0, 16), slice(16, 48), slice(5, 11)):  # any row range, not only blocks
        torch.testing.assert_close(int8.rows(x, rows), whole[..., rows], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(int8(x, rows=rows), whole[..., rows], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(int8(x, activation="gelu_tanh"), F.gelu(whole, approximate="tanh"))
    torch.testing.assert_close(int8(x, slice(16, 48), activation="relu"), F.relu(whole[..., 16:]))


def test_weight_only_layer_has_no_parameters_and_keeps_a_quarter_of_the_bytes():
    linear = nn.Linear(64, 96, bias=False)
    int8 = Int8WeightOnlyLinear.from_linear(linear)
    assert list(int8.parameters()) == []
    assert int8.qweight.nbytes == linear.weight.nbytes // 4
    with torch.inference_mode():
        assert int8(torch.randn(1, 64)).shape == (1, 96)
    state = int8.state_dict()
    assert set(state) == {"qweight", "scales"}


def test_quantize_linear_layers_weight_only_and_bad_kind():
    module = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Sequential(nn.Linear(32, 5)))
    x = torch.randn(5, 16)
    expected = module(x)
    quantize_linear_layers(module, kind="weight_only", compute_dtype=torch.float32)
    assert sum(isinstance(m, Int8WeightOnlyLinear) for m in module.modules()) == 2
    assert relative_error(module(x), expected) < 0.05
    with pytest.raises(ValueError, match="kind must be one of"):
        quantize_linear_layers(nn.Linear(4, 4), kind="int4")
    with pytest.raises(ValueError, match="compute_dtype"):
        Int8WeightOnlyLinear(torch.randn(4, 4), None, compute_dtype=torch.float16)
