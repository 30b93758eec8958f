"""tformer.nn.stacks: a stack is its layers applied in turn (then the final norm); the cached decoder equals a
full recomputation; causality and padding invariance hold through the stack."""

import pytest
import torch

from tformer.nn import Decoder, DecoderLayer, Encoder, EncoderLayer, KVCache, fast_paths

from tests.conftest import spread_layer_norms

D, HEADS, D_FF = 24, 3, 40


def _encoder(norm_first: bool, layers: int = 3) -> Encoder:
    torch.manual_seed(0)
    stack = [EncoderLayer(D, HEADS, D_FF, dropout=0.1, norm_first=norm_first) for _ in range(layers)]
    return Encoder(stack, torch.nn.LayerNorm(D) if norm_first else None).eval()


def _decoder(norm_first: bool, layers: int = 3) -> Decoder:
    torch.manual_seed(1)
    stack = [DecoderLayer(D, HEADS, D_FF, dropout=0.1, norm_first=norm_first) for _ in range(layers)]
    decoder = Decoder(stack, torch.nn.LayerNorm(D) if norm_first else None).eval()
    spread_layer_norms(decoder)  # LayerNorms start at 1 and 0: make them matter
    return decoder


def _source_mask() -> torch.Tensor:
    mask = torch.ones(2, 7, dtype=torch.bool)  # (batch, src_len)
    mask[1, 4:] = False
    return mask


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_is_its_layers_in_turn_then_the_final_norm(norm_first):
    encoder = _encoder(norm_first)
    x, mask = torch.randn(2, 7, D), _source_mask()
    hidden, weights = encoder(x, mask, need_weights=True)
    expected, expected_weights = x, []
    for layer in encoder.layers:
        out = layer(expected, mask, True)
        expected = out.hidden
        expected_weights.append(out.self_weights)
    assert torch.equal(hidden, encoder.final_norm(expected))
    assert len(weights) == len(encoder.layers)
    for w, e in zip(weights, expected_weights):
        assert w.shape == (2, HEADS, 7, 7) and torch.equal(w, e)
    assert encoder(x, mask)[1] == []  # no weights unless asked for


def test_encoder_gives_the_same_result_with_an_all_true_mask_as_without_one():
    encoder = _encoder(False)
    x = torch.randn(2, 7, D)
    assert torch.equal(encoder(x, torch.ones(2, 7, dtype=torch.bool))[0], encoder(x, None)[0])


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_is_its_layers_in_turn_then_the_final_norm(norm_first):
    decoder = _decoder(norm_first)
    x, memory, mask = torch.randn(2, 5, D), torch.randn(2, 7, D), _source_mask()
    out = decoder(x, memory, mask, need_weights=True)
    expected = x
    for i, layer in enumerate(decoder.layers):
        step = layer(expected, memory, mask, need_weights=True)
        expected = step.hidden
        assert torch.equal(out.self_weights[i], step.self_weights) and out.self_weights[i].shape == (2, HEADS, 5, 5)
        assert torch.equal(out.cross_weights[i], step.cross_weights) and out.cross_weights[i].shape == (2, HEADS, 5, 7)
    assert torch.equal(out.hidden, decoder.final_norm(expected))


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_decoding_equals_recomputing_the_whole_prefix(norm_first, fast):
    decoder = _decoder(norm_first)
    x, memory, mask = torch.randn(2, 5, D), torch.randn(2, 7, D), _source_mask()
    with fast_paths(fast), torch.inference_mode():
        full = decoder(x, memory, mask).hidden  # (batch, tgt_len, d_model)
        cache = KVCache(len(decoder.layers), capacity=2)  # small: the buffers grow on the way
        steps = [decoder(x[:, t : t + 1], memory, mask, cache).hidden for t in range(5)]
        assert cache.length == 5
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_cached_decoding_of_several_positions_at_once_equals_one_at_a_time():
    decoder = _decoder(False)
    x, memory = torch.randn(2, 5, D), torch.randn(2, 7, D)
    with torch.inference_mode():
        cache = KVCache(len(decoder.layers))
        first = decoder(x[:, :3], memory, None, cache).hidden  # a prefix of three, then two more
        rest = decoder(x[:, 3:], memory, None, cache).hidden
        full = decoder(x, memory).hidden
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=1e-5)


def test_decoder_is_causal_through_the_stack():
    decoder = _decoder(True)
    x, memory = torch.randn(2, 5, D), torch.randn(2, 7, D)
    changed = x.clone()
    changed[:, 3:] = torch.randn(2, 2, D)  # the future
    a, b = decoder(x, memory).hidden, decoder(changed, memory).hidden
    torch.testing.assert_close(a[:, :3], b[:, :3], atol=1e-6, rtol=1e-6)
    assert (a[:, 3:] - b[:, 3:]).abs().max() > 1e-3


def test_padding_in_the_memory_changes_nothing_for_the_real_tokens():
    """A sentence decoded alone equals the same sentence in a batch where its source is padded."""
    decoder, encoder = _decoder(False), _encoder(False)
    src, x = torch.randn(1, 4, D), torch.randn(1, 5, D)
    padded = torch.cat([src, torch.randn(1, 3, D)], dim=1)  # (1, 7, d_model): three pad positions
    mask = torch.tensor([[True] * 4 + [False] * 3])
    alone = decoder(x, encoder(src)[0]).hidden
    in_batch = decoder(x, encoder(padded, mask)[0], mask).hidden
    torch.testing.assert_close(in_batch, alone, atol=1e-5, rtol=1e-5)
