import pytest
import torch

from tformer.nn import DecoderLayer, EncoderLayer


def _copy_into_torch_encoder_layer(ours: EncoderLayer, norm_first: bool) -> torch.nn.TransformerEncoderLayer:
    ref = torch.nn.TransformerEncoderLayer(24, 3, 40, dropout=0.0, batch_first=True, norm_first=norm_first)
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.self_attn.in_proj.weight)
        ref.self_attn.in_proj_bias.copy_(ours.self_attn.in_proj.bias)
        ref.self_attn.out_proj.load_state_dict(ours.self_attn.out_proj.state_dict())
        ref.linear1.load_state_dict(ours.ffn.linear1.state_dict())
        ref.linear2.load_state_dict(ours.ffn.linear2.state_dict())
        ref.norm1.load_state_dict(ours.self_attn_norm.norm.state_dict())
        ref.norm2.load_state_dict(ours.ffn_norm.norm.state_dict())
    return ref.eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_torch_transformer_encoder_layer(norm_first):
    ours = EncoderLayer(24, 3, 40, dropout=0.0, norm_first=norm_first).eval()
    ref = _copy_into_torch_encoder_layer(ours, norm_first)
    x = torch.randn(2, 7, 24)
    keep = torch.ones(2, 7, dtype=torch.bool)
    keep[1, 4:] = False
    out = ours(x, keep).hidden
    expected = ref(x, src_key_padding_mask=~keep)
    torch.testing.assert_close(out[keep], expected[keep], atol=1e-5, rtol=1e-5)


def test_post_norm_and_pre_norm_compute_different_functions():
    post = EncoderLayer(24, 3, 40, dropout=0.0, norm_first=False).eval()
    pre = EncoderLayer(24, 3, 40, dropout=0.0, norm_first=True).eval()
    pre.load_state_dict(post.state_dict())  # identical weights
    x = torch.randn(2, 5, 24)
    a, b = post(x).hidden, pre(x).hidden
    assert (a - b).abs().max() > 1e-2
    # post-norm ends with LayerNorm (default affine): each position has ~zero mean, unit variance
    torch.testing.assert_close(a.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    assert not torch.allclose(b.mean(-1), torch.zeros(2, 5), atol=1e-3)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torch_transformer_decoder_layer(norm_first):
    ours = DecoderLayer(24, 3, 40, dropout=0.0, norm_first=norm_first).eval()
    ref = torch.nn.TransformerDecoderLayer(24, 3, 40, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    with torch.no_grad():
        for mine, theirs in ((ours.self_attn, ref.self_attn), (ours.cross_attn, ref.multihead_attn)):
            theirs.in_proj_weight.copy_(mine.in_proj.weight)
            theirs.in_proj_bias.copy_(mine.in_proj.bias)
            theirs.out_proj.load_state_dict(mine.out_proj.state_dict())
        ref.linear1.load_state_dict(ours.ffn.linear1.state_dict())
        ref.linear2.load_state_dict(ours.ffn.linear2.state_dict())
        ref.norm1.load_state_dict(ours.self_attn_norm.norm.state_dict())
        ref.norm2.load_state_dict(ours.cross_attn_norm.norm.state_dict())
        ref.norm3.load_state_dict(ours.ffn_norm.norm.state_dict())
    x, memory = torch.randn(2, 5, 24), torch.randn(2, 7, 24)
    keep = torch.ones(2, 7, dtype=torch.bool)
    keep[0, 3:] = False
    out = ours(x, memory, keep).hidden
    expected = ref(x, memory, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(5),
                   memory_key_padding_mask=~keep, tgt_is_causal=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
