import pytest
import torch
import torch.nn.functional as F

from tformer import Seq2SeqTransformer, TransformerConfig
from tformer.errors import ConfigError, ModelFolderError

from tests.conftest import tiny_config


def _tokens(batch, length, vocab=37):
    return torch.randint(4, vocab, (batch, length))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_is_causal(norm_first):
    model = Seq2SeqTransformer(tiny_config(norm_first=norm_first)).eval()
    src, tgt = _tokens(2, 7), _tokens(2, 5)
    base = model(src, tgt)
    for t in range(5):
        changed = tgt.clone()
        changed[:, t + 1 :] = _tokens(2, 5 - t - 1)
        out = model(src, changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-5, rtol=1e-5)
    changed = tgt.clone()
    changed[:, 0] = (tgt[:, 0] + 1 - 4) % 33 + 4
    assert not torch.allclose(model(src, changed)[:, 1:], base[:, 1:])  # and later positions do see the past


@pytest.mark.parametrize("norm_first", [False, True])
def test_appending_source_padding_changes_nothing(norm_first):
    model = Seq2SeqTransformer(tiny_config(norm_first=norm_first)).eval()
    src, tgt = _tokens(2, 5), _tokens(2, 6)
    padded = torch.cat([src, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    enc, enc_padded = model.encode(src), model.encode(padded)
    torch.testing.assert_close(enc_padded.memory[:, :5], enc.memory, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(padded, tgt), model(src, tgt), atol=1e-5, rtol=1e-5)


def test_batch_invariance_of_logits():
    model = Seq2SeqTransformer(tiny_config()).eval()
    src_a, tgt_a = _tokens(1, 4), _tokens(1, 3)
    src_b, tgt_b = _tokens(1, 7), _tokens(1, 6)
    src = torch.zeros(2, 7, dtype=torch.long)
    tgt = torch.zeros(2, 6, dtype=torch.long)
    src[0, :4], src[1] = src_a[0], src_b[0]
    tgt[0, :3], tgt[1] = tgt_a[0], tgt_b[0]
    together = model(src, tgt)
    torch.testing.assert_close(together[0, :3], model(src_a, tgt_a)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_incremental_decoding_with_cache_equals_full_recomputation(norm_first):
    model = Seq2SeqTransformer(tiny_config(norm_first=norm_first)).eval()
    src, tgt = _tokens(3, 7), _tokens(3, 6)
    src[0, 5:] = 0
    full = model(src, tgt)
    encoded = model.encode(src)
    cache = model.new_cache(capacity=3)
    for t in range(6):
        step = model.output(model.decode(tgt[:, t : t + 1], encoded, cache).hidden)
        torch.testing.assert_close(step[:, 0], full[:, t], atol=1e-5, rtol=1e-5)


def test_all_padding_source_gives_finite_outputs():
    model = Seq2SeqTransformer(tiny_config()).eval()
    src = torch.zeros(2, 5, dtype=torch.long)
    src[1, :3] = _tokens(1, 3)
    out = model(src, _tokens(2, 4))
    assert torch.isfinite(out).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(model(src, _tokens(2, 4)).float()).all()


def test_base_configuration_has_about_65M_parameters():
    model = Seq2SeqTransformer(TransformerConfig())  # the paper's base model, shared 37k vocabulary, tied
    assert abs(model.num_parameters() - 65e6) / 65e6 < 0.05


def test_weight_tying_shares_one_matrix():
    model = Seq2SeqTransformer(tiny_config())
    assert model.src_embed.weight is model.tgt_embed.weight is model.output.weight
    untied = Seq2SeqTransformer(tiny_config(share_embeddings=False, tie_output=False))
    assert untied.num_parameters() - model.num_parameters() == 2 * 37 * 24


@pytest.mark.parametrize(
    "field,value,match",
    [("d_model", 25, "divisible"), ("num_heads", 0, "num_heads"), ("d_ff", -1, "d_ff"),
     ("dropout", 1.0, "dropout"), ("dropout", -0.1, "dropout"), ("max_len", 0, "max_len"),
     ("activation", "tanh", "activation")],
)
def test_invalid_config_names_field_and_value(field, value, match):
    with pytest.raises(ValueError, match=match) as err:
        tiny_config(**{field: value})
    assert isinstance(err.value, ConfigError)
    assert str(value) in str(err.value)


def test_config_round_trips_through_json(tmp_path):
    config = tiny_config(norm_first=True, activation="gelu")
    assert TransformerConfig.from_json(config.to_json()) == config
    config.to_json(tmp_path / "c.json")
    assert TransformerConfig.from_json(tmp_path / "c.json") == config
    with pytest.raises(ConfigError, match="unknown field"):
        TransformerConfig.from_dict({**config.to_dict(), "hidden_size": 3})


def test_bad_inputs_are_clear_errors(tiny_model):
    with pytest.raises(ValueError, match="token id 37 is outside the vocabulary"):
        tiny_model(torch.tensor([[5, 37]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="max_len=64"):
        tiny_model(_tokens(1, 65), _tokens(1, 3))


def test_save_and_load_round_trip(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    loaded = Seq2SeqTransformer.from_pretrained(tmp_path)
    src, tgt = _tokens(2, 5), _tokens(2, 4)
    torch.testing.assert_close(loaded(src, tgt), tiny_model(src, tgt))
    assert loaded.output.weight is loaded.tgt_embed.weight  # tying survives
    (tmp_path / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ModelFolderError, match="cannot read weights"):
        Seq2SeqTransformer.from_pretrained(tmp_path)
    with pytest.raises(ModelFolderError, match="missing config.json"):
        Seq2SeqTransformer.from_pretrained(tmp_path / "nowhere")


def test_learns_to_reverse_sequences():
    """The model can learn: reversing random sequences reaches >= 99% token accuracy in a few seconds."""
    torch.manual_seed(0)
    config = tiny_config(src_vocab_size=14, tgt_vocab_size=14, d_model=32, num_heads=4, d_ff=64)
    model = Seq2SeqTransformer(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def batch(n):
        seq = torch.randint(4, 14, (n, 6))
        src = torch.cat([seq, torch.full((n, 1), 2)], 1)
        out = torch.cat([seq.flip(1), torch.full((n, 1), 2)], 1)
        return src, torch.cat([torch.full((n, 1), 1), out[:, :-1]], 1), out

    for _ in range(400):
        src, tgt_in, tgt_out = batch(64)
        loss = torch.nn.functional.cross_entropy(model(src, tgt_in).reshape(-1, 14), tgt_out.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src, tgt_in, tgt_out = batch(500)
    with torch.no_grad():
        accuracy = (model(src, tgt_in).argmax(-1) == tgt_out).float().mean().item()
    assert accuracy >= 0.99


def test_output_projection_inference_path_equals_the_training_path_and_follows_weight_updates():
    from tformer.models.seq2seq import OutputProjection

    proj = OutputProjection(16, 50)
    hidden = torch.randn(3, 5, 16)
    with torch.no_grad():
        proj.bias.normal_()
    training = proj(hidden)  # grad enabled: F.linear
    with torch.inference_mode():
        torch.testing.assert_close(proj(hidden), training, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        proj.weight.mul_(2.0)  # an in-place update (as an optimizer step does) must not leave a stale copy
    with torch.inference_mode():
        torch.testing.assert_close(proj(hidden), F.linear(hidden, proj.weight, proj.bias), atol=1e-5, rtol=1e-5)


def test_output_projection_is_a_linear_layer_tied_to_the_target_embedding_and_follows_the_fast_path_switch():
    from tformer.nn import fast_paths
    from tformer.nn.linear import Linear

    torch.manual_seed(0)
    config = TransformerConfig(src_vocab_size=40, tgt_vocab_size=50, d_model=24, num_heads=3, d_ff=40,
                               num_encoder_layers=1, num_decoder_layers=1, tie_output=True, share_embeddings=False)
    model = Seq2SeqTransformer(config).eval()
    assert isinstance(model.output, Linear) and model.output.weight is model.tgt_embed.weight
    hidden = torch.randn(3, 24)
    with fast_paths(False), torch.inference_mode():
        assert torch.equal(model.output(hidden), F.linear(hidden, model.tgt_embed.weight, model.output.bias))
