"""The C++ search loops (tformer.decoding.native_search) choose what the Python loops choose, exactly."""

import pytest
import torch

from tformer.decoding import native_search
from tformer.decoding.beam import beam_search
from tformer.decoding.greedy import greedy_search
from tformer.models.seq2seq import Seq2SeqTransformer, with_precision
from tformer.nn import native

from tests.conftest import spread_layer_norms, tiny_config

needs_native = pytest.mark.skipif(native.native_ops() is None, reason="native decoding step not built here")


def random_model(seed: int, eos_bias: float, **overrides) -> Seq2SeqTransformer:
    """Random weights; ``eos_bias`` on the output layer makes some hypotheses end early and others run to the limit."""
    torch.manual_seed(seed)
    model = Seq2SeqTransformer(tiny_config(**overrides)).eval()
    with torch.no_grad():
        model.output.bias[model.config.eos_id] = eos_bias
        spread_layer_norms(model)  # LayerNorms start at 1 and 0: make them matter
    return model


def search(model, src, beam, nbest=1, max_len_a=1.5, max_len_b=10):
    if beam == 1:
        return [[(h.tokens, h.step_log_probs)] for h in greedy_search(model, src, max_len_a, max_len_b)]
    return [[(h.tokens, h.step_log_probs, h.normalized_score) for h in hyps]
            for hyps in beam_search(model, src, beam, 0.8, nbest, max_len_a, max_len_b)]


def both_ways(monkeypatch, model, src, beam, **kwargs):
    """The result with the C++ loops (checked to have run) and with the Python loops."""
    calls = []
    loops = {"greedy": native_search.greedy, "beam": native_search.beam}
    monkeypatch.setattr(native_search, "greedy", lambda *a: calls.append(1) or loops["greedy"](*a))
    monkeypatch.setattr(native_search, "beam", lambda *a: calls.append(1) or loops["beam"](*a))
    fast = search(model, src, beam, **kwargs)
    assert calls, "the C++ loop did not run"
    monkeypatch.setenv(native_search.ENV, "0")
    slow = search(model, src, beam, **kwargs)
    monkeypatch.delenv(native_search.ENV)
    return fast, slow


@needs_native
@pytest.mark.parametrize("beam", [1, 2, 4])
@pytest.mark.parametrize("eos_bias", [0.0, 1.5, 3.0])  # all at the limit, mixed, most end at once
@pytest.mark.parametrize("overrides", [
    {},
    {"norm_first": True, "activation": "gelu"},  # pre-norm: the decoder's final LayerNorm runs in the loop
    {"learned_positions": True, "d_ff": 200},  # d_ff > 8 x d_model: a "wide" product
    {"share_embeddings": True, "tie_output": True},
])
def test_the_cpp_loops_choose_the_same_tokens_and_log_probs(monkeypatch, beam, eos_bias, overrides):
    model = random_model(1, eos_bias, **overrides)
    torch.manual_seed(2)
    for length in (1, 4, 9):
        src = torch.randint(4, 37, (1, length))
        src[0, -1] = model.config.eos_id
        fast, slow = both_ways(monkeypatch, model, src, beam, nbest=min(beam, 2))
        assert fast == slow


@needs_native
@pytest.mark.parametrize("beam", [1, 3])
def test_a_short_length_limit_ends_every_hypothesis_the_same_way(monkeypatch, beam):
    model = random_model(3, 0.0)
    src = torch.tensor([[5, 9, 11, 2]])
    fast, slow = both_ways(monkeypatch, model, src, beam, max_len_a=0.0, max_len_b=3)
    assert fast == slow
    assert all(len(hyp[0]) <= 3 for hyps in fast for hyp in hyps)


@needs_native
@pytest.mark.parametrize("beam", [1, 3])
def test_a_padded_single_source_is_masked_as_in_python(monkeypatch, beam):
    model = random_model(4, 2.0)
    src = torch.tensor([[6, 7, 8, 2, 0, 0]])  # trailing padding (pad id 0): the memory mask is not trivial
    assert model.config.pad_id == 0
    fast, slow = both_ways(monkeypatch, model, src, beam)
    assert fast == slow


@needs_native
@pytest.mark.parametrize("precision", ["int8", "bfloat16"])
@pytest.mark.parametrize("beam", [1, 4])
def test_reduced_precision_loops_equal_the_python_loops(monkeypatch, precision, beam):
    from tformer.devices import cpu_has_bf16

    if precision == "bfloat16" and not cpu_has_bf16():
        pytest.skip("this CPU has no bfloat16 arithmetic")
    model = with_precision(random_model(5, 2.5, d_model=32, num_heads=4, d_ff=48), precision)
    torch.manual_seed(6)
    for length in (3, 8):
        src = torch.randint(4, 37, (1, length))
        fast, slow = both_ways(monkeypatch, model, src, beam, nbest=1)
        assert fast == slow


@needs_native
def test_prepare_says_why_it_does_not_apply(monkeypatch):
    model = random_model(0, 0.0)
    one, two = torch.tensor([[5, 6, 2]]), torch.tensor([[5, 6, 2], [7, 8, 2]])
    with torch.inference_mode():
        assert not isinstance(native_search.prepare(model, one), str)
        assert native_search.prepare(model, two) == "a batch of 2 (the C++ loops take one sentence)"
        monkeypatch.setenv(native_search.ENV, "0")
        assert native_search.prepare(model, one) == "turned off (TFORMER_NATIVE_SEARCH=0)"
        monkeypatch.delenv(native_search.ENV)
        model.train()
        assert native_search.prepare(model, one) == "training or gradients are enabled"
        model.eval()
        from tformer.nn import fast_paths

        with fast_paths(False):
            assert native_search.prepare(model, one) == "fast paths disabled"
    assert native_search.prepare(model, one) == "training or gradients are enabled"  # gradients on, outside


@needs_native
def test_the_search_model_is_kept_until_the_weights_change():
    model = random_model(0, 0.0)
    src = torch.tensor([[5, 6, 2]])
    with torch.inference_mode():
        first = native_search.prepare(model, src)
        assert native_search.prepare(model, src) is first
    with torch.no_grad():
        model.output.bias.add_(1.0)
    with torch.inference_mode():
        again = native_search.prepare(model, src)
    assert again is not first
    with torch.no_grad():
        model.decoder.layers[0].ffn.linear1.weight.mul_(2.0)
    with torch.inference_mode():
        assert native_search.prepare(model, src) is not again
