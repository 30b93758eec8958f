"""The one switch for the fast CPU paths (tformer.nn.fast): off, every product is F.linear and every decoding step
runs in Python, the plain path the fast forms are tested against."""

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tformer.nn import Decoder, DecoderLayer, KVCache, fast_paths, fast_paths_enabled, native
from tformer.nn.linear import FUSED_ACTIVATIONS, Linear, activate, product_form


@pytest.fixture(autouse=True)
def _restore_the_switch():
    before = fast_paths_enabled()
    yield
    fast_paths(before)


@pytest.mark.parametrize("rows", [1, 3, 100])
@pytest.mark.parametrize("shape", [(24, 40), (40, 24), (8, 100)])  # widening, narrowing, vocabulary-like
def test_with_fast_paths_off_every_product_is_f_linear_exactly(rows, shape):
    torch.manual_seed(0)
    layer = Linear(*shape)
    x = torch.randn(rows, shape[0])
    with fast_paths(False), torch.inference_mode():
        assert product_form(x, *shape) == "plain"
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        for activation in FUSED_ACTIVATIONS:
            expected = activate(F.linear(x, layer.weight, layer.bias), activation)
            assert torch.equal(layer(x, activation=activation), expected)
        rows_ = slice(0, shape[1] // 2)
        assert torch.equal(layer.rows(x, rows_), F.linear(x, layer.weight[rows_], layer.bias[rows_]))


def test_the_switch_is_a_function_and_a_context_manager():
    fast_paths(True)
    with fast_paths(False):
        assert not fast_paths_enabled()
        with fast_paths(True):
            assert fast_paths_enabled()
        assert not fast_paths_enabled()
    assert fast_paths_enabled()
    fast_paths(False)  # as a plain call it stays
    assert not fast_paths_enabled()


def test_the_environment_variable_turns_them_off_for_the_process():
    code = "import tformer.nn as n; print(n.fast_paths_enabled())"
    env = {**os.environ, "TFORMER_FAST": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _decoder() -> Decoder:
    torch.manual_seed(0)
    return Decoder([DecoderLayer(24, 3, 40, dropout=0.1) for _ in range(2)]).eval()


def test_the_native_step_says_fast_paths_disabled():
    decoder = _decoder()
    cache = KVCache(2)
    x, memory = torch.randn(2, 1, 24), torch.randn(2, 5, 24)
    with torch.inference_mode():
        decoder(x, memory, None, cache)  # fills the cache: the native step could take the next position
        with fast_paths(False):
            assert native.applies(decoder.layers, x, cache, None, False) == "fast paths disabled"
        assert native.applies(decoder.layers, x, cache, None, False) != "fast paths disabled"


def _cached_steps(decoder: Decoder, memory: torch.Tensor, mask: torch.Tensor, xs: torch.Tensor) -> list:
    cache = KVCache(len(decoder.layers), capacity=2)
    return [decoder(x, memory, mask, cache).hidden for x in xs]


def test_cached_decoding_with_fast_paths_off_equals_the_plain_python_path_exactly():
    """Inference with the switch off computes exactly what the training (gradients on) path computes, where no
    fast form or native step is ever taken."""
    decoder = _decoder()
    torch.manual_seed(1)
    memory, xs = torch.randn(3, 7, 24), torch.randn(5, 3, 1, 24)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    with fast_paths(False), torch.inference_mode():
        switched_off = _cached_steps(decoder, memory, mask, xs)
    with torch.enable_grad():
        plain = [h.detach() for h in _cached_steps(decoder, memory, mask, xs)]
    for step, (a, b) in enumerate(zip(switched_off, plain)):
        assert torch.equal(a, b), f"step {step}: max difference {(a - b).abs().max().item()}"
