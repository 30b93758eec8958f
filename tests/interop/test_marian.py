"""Hugging Face Marian export/import: the exported model computes tformer's function, and comes back unchanged."""

import numpy as np
import pytest
import torch

from tformer.decoding.greedy import greedy_search
from tformer.errors import ConfigError
from tformer.interop.marian import export_marian, from_marian, hidden_order, import_marian, to_marian
from tformer.models import Seq2SeqTransformer
from tformer.nn import sinusoidal_positional_encoding

from tests.conftest import tiny_config
from tests.interop.conftest import perturb

transformers = pytest.importorskip("transformers", reason="the Marian export needs transformers")


def padded_batch(vocab: int, eos: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(4, vocab, (3, 7))  # (batch, src_len)
    src[:, -1] = eos
    src[1, 4], src[1, 5:] = eos, 0  # a shorter, padded row
    tgt = torch.randint(4, vocab, (3, 5))  # (batch, tgt_len)
    tgt[:, 0] = 1
    return src, tgt


def marian_logits(hf, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf(input_ids=src, attention_mask=src.ne(0), decoder_input_ids=tgt).logits


@pytest.mark.parametrize("overrides", [
    dict(),
    dict(d_model=27, num_heads=3, d_ff=41, activation="gelu"),
    dict(share_embeddings=False, tie_output=False, tgt_vocab_size=41),
])
def test_exported_logits_equal_tformers(overrides):
    model = Seq2SeqTransformer(tiny_config(**overrides)).eval()
    perturb(model)
    src, tgt = padded_batch(37)
    with torch.no_grad():
        expected = model(src, tgt)  # (batch, tgt_len, vocab)
    got = marian_logits(to_marian(model), src, tgt)
    real = tgt.ne(0)[..., None]
    assert torch.allclose(got * real, expected * real, atol=1e-4)


def test_permutation_maps_our_sinusoids_onto_marians():
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    for d_model in (24, 27):
        marian = MarianSinusoidalPositionalEmbedding(50, d_model).create_weight()
        ours = sinusoidal_positional_encoding(50, d_model)[:, hidden_order(d_model)]
        assert torch.allclose(ours, marian, atol=1e-6)


def test_export_folder_loads_with_transformers_and_decodes_identically(tiny_translator, validation_sentences, tmp_path):
    export_marian(tiny_translator, tmp_path)
    hf = transformers.MarianMTModel.from_pretrained(tmp_path).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    model, tok = tiny_translator.model, tiny_translator.tokenizer
    batch = hf_tok(validation_sentences, return_tensors="pt", padding=True)
    assert batch.input_ids[0, : batch.attention_mask[0].sum()].tolist() == tok.encode(validation_sentences[0]) + [2]

    tgt = torch.ones(batch.input_ids.size(0), 6, dtype=torch.long)  # BOS, then a few real ids
    tgt[:, 1:] = torch.randint(4, tok.vocab_size, (tgt.size(0), 5))
    with torch.no_grad():
        expected = model(batch.input_ids, tgt)
    assert torch.allclose(marian_logits(hf, batch.input_ids, tgt), expected, atol=1e-4)

    limit = 8  # one length limit for every sentence, so HF's per-batch limit equals tformer's per-sentence one
    ours = greedy_search(model, batch.input_ids, max_len_a=0, max_len_b=limit)
    with torch.no_grad():
        theirs = hf.generate(**batch, num_beams=1, do_sample=False, max_length=limit + 2, forced_eos_token_id=2)
    assert any(hyp.tokens for hyp in ours)
    for hyp, row in zip(ours, theirs.tolist()):
        generated = row[1:]  # drop the decoder start token (BOS)
        assert generated[: generated.index(2)] == hyp.tokens


def test_import_returns_the_same_weights(tiny_translator, tmp_path):
    export_marian(tiny_translator, tmp_path)
    back = import_marian(tmp_path)
    assert back.config == tiny_translator.model.config
    ours = tiny_translator.model.state_dict()
    for name, tensor in back.state_dict().items():
        assert torch.equal(tensor, ours[name]), name


def test_from_marian_inverts_to_marian_for_untied_models():
    model = Seq2SeqTransformer(tiny_config(share_embeddings=False, tie_output=False, tgt_vocab_size=41)).eval()
    back = from_marian(to_marian(model))
    for name, tensor in back.state_dict().items():
        np.testing.assert_array_equal(tensor.numpy(), model.state_dict()[name].numpy(), err_msg=name)


@pytest.mark.parametrize("overrides, message", [
    (dict(norm_first=True), "norm_first"),
    (dict(learned_positions=True), "learned_positions"),
    (dict(norm_eps=1e-6), "norm_eps"),
])
def test_what_marian_cannot_express_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        to_marian(Seq2SeqTransformer(tiny_config(**overrides)))
