"""The one source-batching path: chunks, padding, the greedy/beam switch, and every caller agreeing on it."""

import pytest
import torch

from tformer.decoding.batching import length_sorted_chunks, pad_sources, search_batch, search_sources
from tformer.decoding.beam import beam_search
from tformer.decoding.greedy import greedy_search
from tformer.training.trainer import translate_greedy

from tests.conftest import tiny_config
from tests.decoding.tiny import SENTENCES, tiny_translator


def test_chunks_cover_every_nonempty_input_once_sorted_by_length():
    lengths = [3, 0, 5, 1, 3, 0, 2, 5, 4]
    chunks = list(length_sorted_chunks(lengths, batch_size=4))
    assert [len(c) for c in chunks] == [4, 3]
    flat = [i for c in chunks for i in c]
    assert sorted(flat) == [i for i, n in enumerate(lengths) if n]
    assert [lengths[i] for i in flat] == sorted(n for n in lengths if n)
    assert flat.index(0) < flat.index(4) and flat.index(2) < flat.index(7)  # ties keep input order
    longest = [i for c in length_sorted_chunks(lengths, 100, longest_first=True, skip_empty=False) for i in c]
    assert [lengths[i] for i in longest] == sorted(lengths, reverse=True) and len(longest) == len(lengths)
    with pytest.raises(ValueError, match="batch_size"):
        next(length_sorted_chunks(lengths, 0))


def test_pad_sources_appends_eos_and_pads_to_the_longest():
    src = pad_sources([[7, 8], [9, 10, 11, 12], [5]], pad_id=0, eos_id=2)
    assert src.tolist() == [[7, 8, 2, 0, 0], [9, 10, 11, 12, 2], [5, 2, 0, 0, 0]]


@pytest.mark.parametrize("beam", [1, 3])
def test_the_switch_runs_greedy_for_beam_one_and_beam_search_otherwise(beam):
    model = __import__("tformer").Seq2SeqTransformer(tiny_config()).eval()
    src = pad_sources([[5, 6, 7], [8, 9]], 0, 2)
    found = search_batch(model, src, beam=beam, nbest=beam, length_penalty=0.5)
    expected = ([[h] for h in greedy_search(model, src)] if beam == 1
                else beam_search(model, src, beam, length_penalty=0.5, nbest=beam))
    assert [[h.tokens for h in row] for row in found] == [[h.tokens for h in row] for row in expected]


@pytest.mark.parametrize("beam", [1, 2])
def test_search_sources_keeps_input_order_and_skips_empty_sources(beam):
    model = __import__("tformer").Seq2SeqTransformer(tiny_config()).eval()
    torch.manual_seed(4)
    sources = [torch.randint(4, 37, (int(n),)).tolist() if n else [] for n in [6, 0, 2, 9, 4, 0, 7]]
    found = search_sources(model, sources, beam=beam, batch_size=3)
    for ids, hyps in zip(sources, found):
        if not ids:
            assert hyps == []
            continue
        alone = search_batch(model, pad_sources([ids], 0, 2), beam=beam)[0]
        assert hyps[0].tokens == alone[0].tokens
        assert hyps[0].score == pytest.approx(alone[0].score, abs=1e-4)


def test_validation_translations_agree_with_the_translator_on_empty_and_long_inputs():
    translator = tiny_translator(eos_bias=0.0)  # runs to the length limit: long outputs
    texts = ["", *SENTENCES, "   ", "Ein Mann " * 20]  # empty, whitespace-only and truncated inputs
    expected = translator.translate(texts, beam=1)
    assert expected[0] == "" and expected[-2] == ""
    assert translate_greedy(translator.model, translator.tokenizer, texts, batch_size=2) == expected
