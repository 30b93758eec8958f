import json

import pytest
import torch

import tformer.nn.attention as attention_module
from tformer.inspect.attention import (
    AttentionMaps,
    capture_translation,
    encoder_attention,
    maps_json,
    translation_attention_maps,
)
from tformer.models import Seq2SeqTransformer
from tformer.text.labels import bpe_token_label

from tests.conftest import tiny_config
from tests.decoding.tiny import SENTENCES, tiny_translator


def padded_batch():
    src = torch.randint(4, 37, (3, 7))
    src[1, 5:] = 0
    src[2, 2:] = 0
    return src, torch.randint(4, 37, (3, 5))


def assert_rows_are_distributions(weights, allowed):
    """weights (..., query_len, key_len); allowed broadcastable to it, True = may attend."""
    allowed = allowed.expand_as(weights)
    assert torch.equal(weights[~allowed], torch.zeros_like(weights[~allowed]))  # exactly 0, not just small
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5, rtol=0)


def test_asking_for_weights_does_not_change_the_translation_model_outputs():
    model = Seq2SeqTransformer(tiny_config()).eval()
    src, tgt = padded_batch()
    plain_enc, weighed_enc = model.encode(src), model.encode(src, need_weights=True)
    torch.testing.assert_close(weighed_enc.memory, plain_enc.memory, atol=1e-5, rtol=1e-5)
    plain, weighed = model.decode(tgt, plain_enc), model.decode(tgt, plain_enc, need_weights=True)
    torch.testing.assert_close(weighed.hidden, plain.hidden, atol=1e-5, rtol=1e-5)
    assert plain_enc.self_weights == [] and plain.self_weights == [] and plain.cross_weights == []
    assert len(weighed_enc.self_weights) == 2 and weighed.cross_weights[0].shape == (3, 3, 5, 7)


def test_rows_sum_to_one_over_unmasked_keys_and_masked_keys_get_exactly_zero():
    model = Seq2SeqTransformer(tiny_config()).eval()
    src, tgt = padded_batch()
    encoded = model.encode(src, need_weights=True)
    decoded = model.decode(tgt, encoded, need_weights=True)
    real_keys = src.ne(0)[:, None, None, :]  # (batch, 1, 1, src_len)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    for enc_w, self_w, cross_w in zip(encoded.self_weights, decoded.self_weights, decoded.cross_weights):
        assert_rows_are_distributions(enc_w, real_keys)
        assert_rows_are_distributions(self_w, causal)
        assert_rows_are_distributions(cross_w, real_keys)


def test_normal_inference_stays_on_the_fused_path(monkeypatch):
    calls = []
    original = attention_module.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(args[5] if len(args) > 5 else kwargs.get("need_weights", True))
        return original(*args, **kwargs)

    monkeypatch.setattr(attention_module, "scaled_dot_product_attention", spy)
    monkeypatch.setenv("TFORMER_NATIVE", "0")  # the Python modules (the C++ code calls torch's fused kernel itself)
    translator = tiny_translator(eos_bias=0.0)
    translator.translate(SENTENCES[:1], beam=1)
    translator.translate(SENTENCES[:1], beam=3)
    assert calls and not any(calls)  # every call: need_weights=False, i.e. torch's fused SDPA kernel
    calls.clear()
    capture_translation(translator, SENTENCES[0], beam=3)
    assert any(calls)  # capturing uses the reference path that returns weights


@pytest.mark.parametrize("beam", [1, 3])
def test_captured_translation_attention_has_the_documented_shapes_and_labels(beam):
    translator = tiny_translator(eos_bias=0.0)
    trace, maps = capture_translation(translator, SENTENCES[0], beam=beam)
    src, tgt = len(trace.source_tokens), len(trace.steps)
    pieces = translator.tokenizer.tokens(SENTENCES[0])
    assert trace.source_tokens == [bpe_token_label(p) for p in pieces] + ["</s>"]
    assert trace.source_tokens[:2] == ["Ein", "Mann"] and "##ä" in trace.source_tokens
    assert maps["self"].weights.shape == (2, 3, src, src)
    assert maps["decoder"].weights.shape == (2, 3, tgt, tgt)
    assert maps["cross"].weights.shape == (2, 3, tgt, src)
    assert maps["cross"].query_tokens == trace.target_tokens and maps["cross"].key_tokens == trace.source_tokens
    assert maps["decoder"].key_tokens == ["<s>", *trace.target_tokens[:-1]]
    assert_rows_are_distributions(maps["decoder"].weights, torch.ones(tgt, tgt, dtype=torch.bool).tril())
    assert_rows_are_distributions(maps["cross"].weights, torch.ones(1, dtype=torch.bool))


def test_teacher_forced_attention_equals_what_incremental_decoding_computed():
    translator = tiny_translator(eos_bias=0.0)
    trace, maps = capture_translation(translator, SENTENCES[1], beam=3)
    model, eos = translator.model, translator.model.config.eos_id
    src = torch.tensor([translator.encode_sources([SENTENCES[1]])[0] + [eos]])
    encoded, cache = model.encode(src), model.new_cache()
    inputs = [model.config.bos_id] + [s.token_id for s in trace.steps[:-1]]
    for t, token in enumerate(inputs):  # one step at a time with the cache, as decoding runs
        out = model.decode(torch.tensor([[token]]), encoded, cache, need_weights=True)
        for layer in range(2):
            torch.testing.assert_close(out.cross_weights[layer][0, :, 0], maps["cross"].weights[layer, :, t],
                                       atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(out.self_weights[layer][0, :, 0], maps["decoder"].weights[layer, :, t, : t + 1],
                                       atol=1e-5, rtol=1e-4)


def test_layer_and_head_out_of_range_name_the_valid_range():
    maps = AttentionMaps(torch.rand(2, 3, 4, 5), list("abcd"), list("vwxyz"), "cross")
    assert maps.head(2, 3).shape == (4, 5)
    with pytest.raises(ValueError, match="layer 3 is out of range: this model has 2 layers, numbered 1 to 2"):
        maps.check(layer=3)
    with pytest.raises(ValueError, match="head 0 is out of range: this model has 3 heads, numbered 1 to 3"):
        maps.head(1, 0)
    with pytest.raises(ValueError, match="there are 4 query and 4 key labels"):
        AttentionMaps(torch.rand(2, 3, 4, 5), list("abcd"), list("wxyz"), "cross")
    with pytest.raises(ValueError, match="kind must be one of self, decoder, cross"):
        AttentionMaps(torch.rand(2, 3, 4, 5), list("abcd"), list("vwxyz"), "encoder")


def test_bert_encoder_attention_is_captured_without_changing_outputs(tmp_path):
    helpers = pytest.importorskip("tests.models.bert_helpers")
    from tformer.models.bert import BertModel
    from tformer.text.pretrained import Tokenizer

    folder = helpers.save_tiny_encoder(tmp_path / "bert")
    model, tokenizer = BertModel.from_pretrained(folder), Tokenizer.from_pretrained(folder)
    maps = encoder_attention(model, tokenizer, "the film was not boring")
    assert maps.query_tokens == ["[CLS]", "the", "film", "was", "not", "boring", "[SEP]"]
    assert maps.weights.shape == (2, 3, 7, 7) and maps.kind == "self"
    batch = tokenizer(["the film was not boring", "it was great"])  # padded: the second row has masked keys
    plain, weighed = model(**batch), model(**batch, need_weights=True)
    torch.testing.assert_close(weighed.last_hidden_state, plain.last_hidden_state, atol=1e-5, rtol=1e-5)
    for w in weighed.attentions:
        assert_rows_are_distributions(w, batch.attention_mask.bool()[:, None, None, :])
    torch.testing.assert_close(weighed.attentions[1][:1], maps.weights[1][None])


def test_the_api_form_of_attention_maps_rounds_the_weights_and_keeps_the_layout():
    weights = torch.rand(2, 3, 4, 5).softmax(-1)  # (layers, heads, query_len, key_len)
    maps = AttentionMaps(weights, list("abcd"), list("vwxyz"), "cross", "text")
    data = json.loads(json.dumps(maps_json(maps, decimals=3)))
    assert (data["layers"], data["heads"], data["kind"]) == (2, 3, "cross")
    assert data["query_tokens"] == list("abcd") and data["key_tokens"] == list("vwxyz")
    assert [data["query_axis"], data["key_axis"]] == list(maps.axis_labels)
    back = torch.tensor(data["weights"], dtype=torch.float64)
    assert back.shape == weights.shape
    torch.testing.assert_close(back, weights.double(), atol=5e-4 + 1e-12, rtol=0)  # rounded to 3 decimals
    assert not torch.allclose(back, weights.double(), atol=1e-6, rtol=0)  # and not kept in full


def test_translation_attention_maps_pick_one_kind_and_check_the_layer_before_translating(monkeypatch):
    translator = tiny_translator(eos_bias=0.0)
    found = translation_attention_maps(translator, SENTENCES[:2], "decoder", beam=2, layer=2, head=3)
    for text, (trace, maps) in zip(SENTENCES[:2], found):
        expected_trace, expected = capture_translation(translator, text, beam=2)
        assert trace.translation == expected_trace.translation and maps.kind == "decoder"
        assert torch.equal(maps.weights, expected["decoder"].weights)
    import tformer.inspect.attention as inspect_attention

    monkeypatch.setattr(inspect_attention, "capture_translation", lambda *a, **k: pytest.fail("translated"))
    with pytest.raises(ValueError, match="layer 3 is out of range: this model has 2 layers"):
        translation_attention_maps(translator, SENTENCES, "self", layer=3)
    with pytest.raises(ValueError, match="kind must be one of"):
        translation_attention_maps(translator, SENTENCES, "both")
