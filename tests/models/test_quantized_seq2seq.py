"""The int8 inference copy of the translation model: close to the float model, and decodes with the cache."""

import torch

from tformer.decoding.beam import beam_search
from tformer.decoding.greedy import greedy_search
from tformer.models import Seq2SeqTransformer
from tformer.models.seq2seq import Int8OutputProjection, quantize_int8
from tformer.nn.quantized import Int8Linear

from tests.conftest import tiny_config


def test_int8_copy_is_close_to_the_float_model_and_leaves_it_unchanged():
    model = Seq2SeqTransformer(tiny_config(d_model=27, num_heads=3, d_ff=41)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    int8 = quantize_int8(model)
    assert isinstance(int8.output, Int8OutputProjection)
    assert isinstance(int8.decoder.layers[0].cross_attn.in_proj, Int8Linear)
    src, tgt = torch.randint(4, 37, (3, 7)), torch.randint(4, 37, (3, 5))
    src[1, 5:] = 0  # padded row
    with torch.inference_mode():
        expected, got = model(src, tgt), int8(src, tgt)
    assert float((got - expected).norm() / expected.norm()) < 0.05
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_int8_incremental_decoding_is_close_to_full_recomputation():
    # Not equal: inputs are quantized with one scale per call, and a step's input differs from the whole sequence.
    int8 = quantize_int8(Seq2SeqTransformer(tiny_config()).eval())
    src, tgt = torch.randint(4, 37, (2, 6)), torch.randint(4, 37, (2, 5))
    with torch.inference_mode():
        encoded = int8.encode(src)
        full = int8.decode(tgt, encoded).hidden
        cache = int8.new_cache()
        steps = [int8.decode(tgt[:, t : t + 1], encoded, cache).hidden for t in range(5)]
    incremental = torch.cat(steps, dim=1)  # (batch, tgt_len, d_model)
    assert float((incremental - full).norm() / full.norm()) < 0.02


def test_int8_model_decodes_with_greedy_and_beam_search():
    int8 = quantize_int8(Seq2SeqTransformer(tiny_config()).eval())
    src = torch.randint(4, 37, (2, 6))
    src[:, -1] = 2
    assert len(greedy_search(int8, src, max_len_a=0, max_len_b=5)) == 2
    assert [len(hyps) for hyps in beam_search(int8, src, beam=3, nbest=2, max_len_a=0, max_len_b=5)] == [2, 2]
