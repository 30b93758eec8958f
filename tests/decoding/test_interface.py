"""The decoding interface: the models that search drives implement it, and it means what greedy/beam assumed."""

import torch

from tformer.decoding.interface import DecodingModel, EncoderDecoderModel, SearchCache, SearchMemory

from tests.decoding.scripted import ScriptedModel


def test_seq2seq_implements_the_interface(tiny_model):
    assert isinstance(tiny_model, EncoderDecoderModel) and isinstance(tiny_model, DecodingModel)
    assert isinstance(tiny_model.new_cache(), SearchCache)
    assert isinstance(tiny_model.encode(torch.tensor([[5, 6, 2]])), SearchMemory)


def test_the_scripted_test_model_implements_the_interface():
    assert isinstance(ScriptedModel({}), EncoderDecoderModel)


def test_next_token_log_probs_is_the_last_position_of_a_full_pass(tiny_model):
    src = torch.tensor([[5, 6, 7, 2], [8, 9, 2, 0]])  # (2, 4), one row padded
    tgt = torch.tensor([[1, 11, 12, 13, 14], [1, 15, 16, 17, 18]])  # (2, 5)
    memory = tiny_model.encode(src)
    full = tiny_model.output.log_probs(tiny_model.decode(tgt, memory).hidden)  # (2, 5, vocab)
    cache = tiny_model.new_cache(capacity=3)  # grows on the way
    first = tiny_model.next_token_log_probs(tgt[:, :2], cache, memory)  # (2, vocab)
    torch.testing.assert_close(first, full[:, 1], atol=1e-5, rtol=0)
    for t in range(2, tgt.size(1)):
        step = tiny_model.next_token_log_probs(tgt[:, t : t + 1], cache, memory)
        assert step.shape == (2, tiny_model.config.tgt_vocab_size) and step.dtype == torch.float32
        torch.testing.assert_close(step, full[:, t], atol=1e-5, rtol=0)
    assert cache.length == tgt.size(1)


def test_seq2seq_needs_memory(tiny_model):
    try:
        tiny_model.next_token_log_probs(torch.tensor([[1]]), tiny_model.new_cache())
    except ValueError as err:
        assert "memory" in str(err)
    else:
        raise AssertionError("no error without memory")
