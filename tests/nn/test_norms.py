"""RMSNorm and the SwiGLU feed-forward against their formulas."""

import torch
import torch.nn.functional as F

from tformer.nn.rmsnorm import RMSNorm
from tformer.nn.swiglu import SwiGLUFeedForward


def test_rmsnorm_equals_formula():
    norm = RMSNorm(13, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(13))
    x = torch.randn(2, 5, 13) * 3
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)


def test_rmsnorm_is_scale_invariant_and_keeps_dtype():
    norm = RMSNorm(9)
    x = torch.randn(3, 9)
    torch.testing.assert_close(norm(x * 50.0), norm(x), atol=1e-5, rtol=1e-5)
    assert norm.to(torch.bfloat16)(x.bfloat16()).dtype == torch.bfloat16


def test_swiglu_equals_formula():
    ffn = SwiGLUFeedForward(d_model=11, d_ff=17).eval()
    w_gate, w_up = ffn.gate_up.weight[:17], ffn.gate_up.weight[17:]
    x = torch.randn(2, 5, 11)
    expected = (F.silu(x @ w_gate.T) * (x @ w_up.T)) @ ffn.down.weight.T
    torch.testing.assert_close(ffn(x), expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the inference product forms give the same values
        torch.testing.assert_close(ffn(x), expected, atol=1e-5, rtol=1e-5)


def test_swiglu_with_bias_adds_them():
    ffn = SwiGLUFeedForward(d_model=6, d_ff=5, bias=True).eval()
    with torch.no_grad():
        ffn.gate_up.bias.normal_()
        ffn.down.bias.normal_()
    x = torch.randn(1, 3, 6)
    gate, up = F.linear(x, ffn.gate_up.weight, ffn.gate_up.bias).split(5, dim=-1)
    expected = F.linear(F.silu(gate) * up, ffn.down.weight, ffn.down.bias)
    torch.testing.assert_close(ffn(x), expected, atol=1e-5, rtol=1e-5)
