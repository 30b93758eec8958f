import pytest
import torch
from torch import nn

from tformer.nn.quantized import Int8Linear, quantize_linear_layers


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
