"""Translator precisions: float32 (the model as trained), bfloat16 and int8 copies that decode like the float model
does, through the same search and, where it applies, the same native step (exactly as the Python modules)."""

import pytest
import torch

from tformer.decoding.translator import Translator
from tformer.models.seq2seq import PRECISIONS, Int8OutputProjection, Seq2SeqTransformer, with_precision
from tformer.nn import native
from tformer.nn.quantized import Int8Linear

from tests.cli.conftest import tiny_model_dir  # noqa: F401  (a pytest fixture)
from tests.conftest import tiny_config

SENTENCES = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "", "Eine Frau."]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_from_pretrained_computes_in_the_precision_asked_for(tiny_model_dir, precision):  # noqa: F811
    translator = Translator.from_pretrained(tiny_model_dir, precision=precision)
    assert translator.precision == precision
    layer = translator.model.decoder.layers[0]
    if precision == "int8":
        assert isinstance(layer.ffn.linear1, Int8Linear) and isinstance(translator.model.output, Int8OutputProjection)
    else:
        assert layer.ffn.linear1.weight.dtype == getattr(torch, precision)
    out = translator.translate(SENTENCES, beam=2)
    assert len(out) == len(SENTENCES) and out[2] == "" and all(isinstance(t, str) for t in out)


def test_unknown_precision_is_a_value_error_naming_the_choices(tiny_model_dir):  # noqa: F811
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, int8, got 'fp8'"):
        Translator.from_pretrained(tiny_model_dir, precision="fp8")
    with pytest.raises(ValueError, match="got 'half'"):
        with_precision(Seq2SeqTransformer(tiny_config()), "half")


def test_bfloat16_on_a_cpu_without_it_is_a_clear_error(monkeypatch):
    import tformer.devices

    monkeypatch.setattr(tformer.devices, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="bfloat16 needs a CPU with AVX512-BF16 or AMX"):
        with_precision(Seq2SeqTransformer(tiny_config()), "bfloat16")


@pytest.mark.parametrize("precision", ["int8", "bfloat16"])
@pytest.mark.parametrize("beam", [1, 3])
def test_reduced_precision_search_is_the_same_with_and_without_the_native_step(monkeypatch, precision, beam):
    if native.native_ops() is None:
        pytest.skip("native decoding step not built here")
    torch.manual_seed(0)
    model = with_precision(Seq2SeqTransformer(tiny_config(d_model=32, num_heads=4, d_ff=48)).eval(), precision)
    translator = Translator(model, _DigitTokenizer(), precision=precision)
    texts = ["3 1 4 1 5 9 2 6", "2 7 1 8", "1 6 1 8 0 3 3 9 8 8 7"]
    calls = []
    step = native.decoder_step
    monkeypatch.setattr(native, "decoder_step", lambda *args: calls.append(1) or step(*args))
    fast = [[(h.tokens, h.step_log_probs) for h in hyps] for hyps in translator.search(texts, beam=beam, nbest=1)]
    assert calls
    monkeypatch.setattr(native, "applies", lambda *args: "turned off by the test")
    assert fast == [[(h.tokens, h.step_log_probs) for h in hyps] for hyps in translator.search(texts, beam=beam)]


class _DigitTokenizer:
    """Whitespace-separated digits as ids 4..13 (the tiny model's vocabulary is 37)."""

    def encode_batch(self, texts):
        return [[4 + int(t) for t in text.split()] for text in texts]

    def decode(self, ids):
        return " ".join(str(i - 4) for i in ids)
