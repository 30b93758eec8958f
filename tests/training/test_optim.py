import torch

from tformer.models import Seq2SeqTransformer, TransformerConfig
from tformer.training.optim import param_groups


def _tiny_model():
    return Seq2SeqTransformer(TransformerConfig(src_vocab_size=31, tgt_vocab_size=31, d_model=24, num_heads=3,
                                                num_encoder_layers=1, num_decoder_layers=1, d_ff=40, max_len=16,
                                                dropout=0.0))


def test_every_trainable_parameter_is_in_exactly_one_group_matrices_decay():
    model = _tiny_model()
    model.encoder.requires_grad_(False)
    decayed, plain = param_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    ids = [id(p) for p in decayed["params"] + plain["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(ids) == sorted(trainable) and len(set(ids)) == len(ids)  # tied weights counted once
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() < 2 for p in plain["params"])
    assert plain["params"] and decayed["params"]


def test_with_zero_decay_the_groups_update_exactly_like_one_group():
    torch.manual_seed(0)
    a, b = _tiny_model(), _tiny_model()
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.AdamW(a.parameters(), lr=1e-2, weight_decay=0.0)
    opt_b = torch.optim.AdamW(param_groups(b, 0.0), lr=1e-2)
    src, tgt = torch.randint(3, 31, (2, 5)), torch.randint(3, 31, (2, 7))
    for model, opt in ((a, opt_a), (b, opt_b)):
        for _ in range(2):
            model(src, tgt).square().mean().backward()  # logits (batch, tgt_len, vocab)
            opt.step()
            opt.zero_grad()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=0, rtol=0, msg=name)
