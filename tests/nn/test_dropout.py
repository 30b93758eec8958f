import pytest
import torch

from tformer.nn.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_zeroes_a_share_p_and_scales_the_rest_like_torch(p):
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5  # no zeros of its own
    y = dropout(x, p)
    zeroed = y.eq(0)
    # 200,000 draws: the share of zeros is within 5 standard deviations of p.
    assert abs(zeroed.float().mean().item() - p) < 5 * (p * (1 - p) / x.numel()) ** 0.5
    torch.testing.assert_close(y[~zeroed], x[~zeroed] / (1 - p))


def test_gradient_is_the_mask_times_the_scale():
    x = torch.randn(64, 32, requires_grad=True)
    y = dropout(x, 0.25)
    (grad,) = torch.autograd.grad(y.sum(), x)
    expected = torch.where(y.detach().eq(0), 0.0, 1 / 0.75)
    torch.testing.assert_close(grad, expected)


def test_eval_mode_and_p_zero_return_the_input_and_p_one_zeroes_everything():
    x = torch.randn(8, 16)
    module = Dropout(0.3).eval()
    assert module(x) is x
    assert dropout(x, 0.0) is x
    assert dropout(x, 1.0).eq(0).all()


def test_seeded_runs_repeat_and_the_module_is_a_torch_dropout():
    x = torch.randn(32, 32)
    torch.manual_seed(5)
    first = Dropout(0.2).train()(x)
    torch.manual_seed(5)
    second = Dropout(0.2).train()(x)
    assert torch.equal(first, second)
    assert isinstance(Dropout(0.2), torch.nn.Dropout) and not list(Dropout(0.2).parameters())
