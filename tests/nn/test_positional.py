import math

import pytest
import torch

from tformer.nn import PositionalEncoding, sinusoidal_positional_encoding


@pytest.mark.parametrize("d_model", [24, 7, 512])
def test_table_matches_the_formula(d_model):
    table = sinusoidal_positional_encoding(100, d_model)
    assert table.shape == (100, d_model)
    for pos in (0, 1, 5, 37, 99):
        for dim in {0, 1, 2, 3, d_model - 2, d_model - 1}:
            i = dim // 2
            angle = pos / 10000 ** (2 * i / d_model)
            expected = math.sin(angle) if dim % 2 == 0 else math.cos(angle)
            assert table[pos, dim].item() == pytest.approx(expected, abs=1e-6), (pos, dim)


def test_module_adds_the_table_and_honours_offset():
    pe = PositionalEncoding(24, max_len=50)
    x = torch.randn(2, 5, 24)
    table = sinusoidal_positional_encoding(50, 24)
    torch.testing.assert_close(pe(x), x + table[:5])
    torch.testing.assert_close(pe(x, offset=7), x + table[7:12])
    assert "table" not in dict(pe.named_parameters())  # a buffer, not learned


def test_learned_positions_are_parameters():
    pe = PositionalEncoding(24, max_len=50, learned=True)
    assert dict(pe.named_parameters())["table"].shape == (50, 24)


def test_too_long_sequence_is_a_clear_error():
    pe = PositionalEncoding(24, max_len=8)
    with pytest.raises(ValueError, match="longer than the positional table"):
        pe(torch.zeros(1, 9, 24))
