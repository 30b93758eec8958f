"""Rotary position embeddings: the formula, and attention scores that depend on relative position only."""

import math

import pytest
import torch

from tformer.nn.rotary import RotaryEmbedding, apply_rotary, rotary_frequencies


def rotate_by_formula(x: torch.Tensor, position: int, base: float) -> torch.Tensor:
    """The rotation written out pair by pair: features (i, i + d/2) turned by position · base^(-2i/d)."""
    d = x.numel()
    out = torch.empty_like(x, dtype=torch.float64)
    for i in range(d // 2):
        angle = position * base ** (-2 * i / d)
        a, b = float(x[i]), float(x[i + d // 2])
        out[i] = a * math.cos(angle) - b * math.sin(angle)
        out[i + d // 2] = a * math.sin(angle) + b * math.cos(angle)
    return out.float()


@pytest.mark.parametrize("base", [10000.0, 500.0])
def test_rotation_equals_its_formula(base):
    rotary = RotaryEmbedding(head_dim=10, base=base)
    x = torch.randn(2, 3, 7, 10)  # (batch, heads, len, head_dim)
    positions = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 3, 4, 9, 13]])  # (batch, len)
    cos, sin = rotary(positions)
    rotated = apply_rotary(x, cos, sin)
    for b in range(2):
        for h in range(3):
            for t in range(7):
                expected = rotate_by_formula(x[b, h, t], int(positions[b, t]), base)
                torch.testing.assert_close(rotated[b, h, t], expected, atol=2e-5, rtol=1e-5)


def test_rotation_keeps_length_and_position_zero_is_identity():
    rotary = RotaryEmbedding(head_dim=8)
    x = torch.randn(1, 2, 5, 8)
    cos, sin = rotary(torch.arange(5)[None] * 7)
    rotated = apply_rotary(x, cos, sin)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotated[:, :, 0], x[:, :, 0])


def test_scores_depend_only_on_relative_position():
    """q at m and k at n: the rotated dot product is the same for every (m, n) with the same m - n."""
    rotary = RotaryEmbedding(head_dim=12, base=100.0)
    q, k = torch.randn(1, 1, 1, 12), torch.randn(1, 1, 1, 12)

    def score(m: int, n: int) -> float:
        cos_m, sin_m = rotary(torch.tensor([[m]]))
        cos_n, sin_n = rotary(torch.tensor([[n]]))
        return float((apply_rotary(q, cos_m, sin_m) * apply_rotary(k, cos_n, sin_n)).sum())

    for offset in (0, 1, 5, 23):
        assert score(3 + offset, 3) == pytest.approx(score(40 + offset, 40), abs=1e-4)
        assert score(3, 3 + offset) == pytest.approx(score(17, 17 + offset), abs=1e-4)
    assert score(5, 0) != pytest.approx(score(5, 4), abs=1e-3)  # but it does depend on the distance


def test_odd_head_dim_is_refused_with_its_value():
    with pytest.raises(ValueError, match="head_dim, got 7"):
        rotary_frequencies(7)


def test_half_precision_model_keeps_float32_angles():
    """model.to(bfloat16) must not round the frequencies: the angles stay float32 and only cos/sin are cast."""
    exact = RotaryEmbedding(head_dim=64, base=100000.0)
    halved = RotaryEmbedding(head_dim=64, base=100000.0).to(torch.bfloat16)
    positions = torch.tensor([[0, 7, 1000, 4095]])
    for a, b in zip(exact(positions, torch.bfloat16), halved(positions, torch.bfloat16)):
        assert torch.equal(a, b)
