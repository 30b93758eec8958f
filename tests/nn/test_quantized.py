import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tformer.nn.fast import fast_paths
from tformer.nn.quantized import (
    Int4WeightOnlyLinear,
    Int8Linear,
    Int8WeightOnlyLinear,
    quantize_groups,
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


# ---------------------------------------------------------------------------------------- 4-bit weight-only


def q4_1_weight(out_features: int, in_features: int, group_size: int = 32) -> torch.Tensor:
    """A weight already in GGUF's Q4_1 form: per group, low + step · code with codes 0..15 (both ends present) and
    step, low exact in bfloat16."""
    groups = in_features // group_size
    codes = torch.randint(0, 16, (out_features, groups, group_size))
    codes[..., 0], codes[..., 1] = 0, 15
    step = 2.0 ** -torch.randint(3, 7, (out_features, groups, 1)).float()
    low = -step * torch.randint(0, 9, (out_features, groups, 1)).float()
    return (low + step * codes).view(out_features, in_features)


def test_q4_1_weights_come_back_exactly():
    weight = q4_1_weight(48, 64)
    int4 = Int4WeightOnlyLinear(weight, None)
    assert torch.equal(int4.dequantized_weight(), weight)
    assert int4.codes.dtype == torch.uint8 and int(int4.codes.max()) == 15


def test_int4_rounds_other_weights_to_16_levels_a_group():
    weight = torch.randn(16, 64)
    codes, low, step = quantize_groups(weight, 32)
    rebuilt = (low[..., None] + step[..., None] * codes.view(16, 2, 32).float()).view(16, 64)
    assert ((rebuilt - weight).abs() <= step.repeat_interleave(32, dim=1) / 2 + 1e-6).all()


@pytest.mark.parametrize("out_features", [48, 40])  # 40: not a multiple of 16, the kernel is not used
def test_int4_product_equals_the_dequantized_weight_product(out_features):
    linear = nn.Linear(64, out_features)
    int4 = Int4WeightOnlyLinear.from_linear(linear)
    assert bool(int4.why_not_kernel) == (out_features % 16 != 0)
    x = torch.randn(2, 5, 64)
    expected = F.linear(x.bfloat16().float(), int4.dequantized_weight(), linear.bias)
    got = int4(x)
    assert got.shape == (2, 5, out_features) and got.dtype == torch.float32
    assert relative_error(got, expected) < 1e-2  # bfloat16 input and output
    with fast_paths(False):
        torch.testing.assert_close(int4(x), got, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(int4.rows(x, slice(8, 16)), got[..., 8:16])
    torch.testing.assert_close(int4(x, activation="relu"), F.relu(got))
    assert list(int4.parameters()) == [] and "packed" not in int4.state_dict()
    with pytest.raises(ValueError, match="group_size must divide"):
        Int4WeightOnlyLinear(torch.randn(16, 48), None, group_size=32)


def test_quantize_linear_layers_int4_keeps_int8_where_groups_do_not_fit():
    module = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 16))
    quantize_linear_layers(module, kind="int4_weight_only")
    assert isinstance(module[0], Int4WeightOnlyLinear) and isinstance(module[2], Int8WeightOnlyLinear)
