import math

import pytest
import torch

from tformer.training.losses import label_smoothed_nll_loss
from tformer.training.recipe import Recipe
from tformer.training.schedule import inverse_sqrt_factor


def test_inverse_sqrt_matches_the_paper_formula_up_to_the_peak():
    d_model, warmup = 512, 4000
    peak = d_model**-0.5 * warmup**-0.5
    for step in (1, 100, 3999, 4000, 4001, 20000):
        paper = d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)
        assert peak * inverse_sqrt_factor(step, warmup) == pytest.approx(paper)


def test_label_smoothing_ignores_padding_and_matches_its_definition():
    logits = torch.randn(2, 3, 7)
    target = torch.tensor([[4, 5, 0], [6, 0, 0]])
    loss, nll = label_smoothed_nll_loss(logits, target, 0.1, pad_id=0)
    lp = torch.log_softmax(logits, -1)
    keep = target.ne(0)
    expected_nll = -lp.gather(-1, target[..., None])[..., 0][keep].sum()
    uniform = -lp.mean(-1)[keep].sum()
    torch.testing.assert_close(nll, expected_nll)
    torch.testing.assert_close(loss, 0.9 * expected_nll + 0.1 * uniform)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_one_log_softmax_loss_equals_two_cross_entropies_in_value_and_gradient(smoothing):
    # What the loss replaced: F.cross_entropy with label smoothing, and again without it for the NLL.
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, requires_grad=True)
    target = torch.randint(0, 11, (3, 5))
    target[0, 3:] = 2  # padding, with a pad id that is not 0
    loss, nll = label_smoothed_nll_loss(logits, target, smoothing, pad_id=2)
    (grad,) = torch.autograd.grad(loss, logits)
    flat, flat_target = logits.reshape(-1, 11), target.reshape(-1)
    expected = torch.nn.functional.cross_entropy(flat, flat_target, ignore_index=2, label_smoothing=smoothing,
                                                 reduction="sum")
    (expected_grad,) = torch.autograd.grad(expected, logits)
    expected_nll = torch.nn.functional.cross_entropy(flat, flat_target, ignore_index=2, reduction="sum")
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(nll, expected_nll.detach())
    torch.testing.assert_close(grad, expected_grad)
    assert not nll.requires_grad
    # Flattened (tokens, vocab) logits give the same sums.
    flat_loss, _ = label_smoothed_nll_loss(flat, flat_target, smoothing, pad_id=2)
    torch.testing.assert_close(flat_loss, loss)


def test_recipe_file_parses_and_rejects_bad_fields(tmp_path):
    recipe = Recipe.from_file("recipes/multi30k_de_en.toml")
    assert recipe.train.label_smoothing == 0.1 and recipe.tokenizer.vocab_size >= 4000
    (tmp_path / "bad.toml").write_text("[train]\nlearning_rate = 3\n")
    with pytest.raises(ValueError, match="unknown field"):
        Recipe.from_file(tmp_path / "bad.toml")
    (tmp_path / "bad2.toml").write_text("[train]\nlabel_smoothing = 1.5\n")
    with pytest.raises(ValueError, match="label_smoothing"):
        Recipe.from_file(tmp_path / "bad2.toml")
    assert math.isfinite(Recipe.from_json(recipe.to_json()).train.peak_lr)
    stage2 = Recipe.from_file("recipes/multi30k_de_en_names.toml")
    assert stage2.train.init_from and stage2.data.name_substitutions > 0
    assert Recipe.from_json(stage2.to_json()) == stage2  # tuples of names survive the JSON round trip


def test_batch_loss_on_non_pad_positions_equals_the_loss_over_every_position():
    from tformer import Seq2SeqTransformer, TransformerConfig
    from tformer.training.data import collate
    from tformer.training.losses import batch_loss

    torch.manual_seed(0)
    cfg = TransformerConfig(src_vocab_size=30, tgt_vocab_size=30, d_model=16, num_heads=2, d_ff=32,
                            num_encoder_layers=1, num_decoder_layers=1, dropout=0.0)
    model = Seq2SeqTransformer(cfg)
    pairs = [([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14]), ([15, 16], [17])]  # target lengths differ: padding
    batch = collate(pairs, cfg.pad_id, cfg.bos_id, cfg.eos_id)
    loss, nll = batch_loss(model, batch, 0.1, cfg.pad_id)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    full_loss, full_nll = label_smoothed_nll_loss(model(batch.src, batch.tgt_in), batch.tgt_out, 0.1, cfg.pad_id)
    full_grads = torch.autograd.grad(full_loss, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(loss, full_loss)
    torch.testing.assert_close(nll, full_nll)
    for got, expected in zip(grads, full_grads):
        if expected is not None:
            torch.testing.assert_close(got, expected)
