"""LoRA: a fresh adapter leaves the model unchanged, merged equals unmerged, only the adapter (and what is asked
for) trains, the update is the low-rank formula."""

import pytest
import torch
from torch import nn

from tformer.models.bert import BertForSequenceClassification
from tformer.nn.linear import Linear
from tformer.nn.lora import LoraConfig, LoraLinear, add_lora, expand_targets, merge_lora, train_only

from tests.models.bert_helpers import tiny_bert_config


def classifier(seed=0):
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_bert_config(labels=["no", "yes", "maybe"])).eval()


def inputs():
    torch.manual_seed(1)
    ids = torch.randint(5, 30, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    return ids, mask


def randomise_adapters(model):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoraLinear):
                module.lora_b.normal_(std=0.2)


def test_update_is_the_low_rank_formula():
    torch.manual_seed(0)
    base = Linear(11, 13)
    layer = LoraLinear(base, rank=3, alpha=6.0)
    with torch.no_grad():
        layer.lora_b.normal_()
    x = torch.randn(2, 5, 11)
    expected = x @ base.weight.T + base.bias + 2.0 * (x @ layer.lora_a.T @ layer.lora_b.T)
    assert torch.allclose(layer(x), expected, atol=1e-5)
    assert torch.allclose(layer(x, activation="gelu"), nn.functional.gelu(expected), atol=1e-5)
    assert torch.allclose(layer.rows(x, slice(4, 9)), expected[..., 4:9], atol=1e-5)


def test_fresh_adapter_equals_the_base_model():
    model = classifier()
    ids, mask = inputs()
    before = model(ids, mask).logits
    wrapped = add_lora(model, LoraConfig(rank=4, alpha=8, targets=["all"]))
    assert len(wrapped) == 4 * 2  # in_proj, out_proj, linear1, linear2 in each of 2 layers
    assert torch.equal(model(ids, mask).logits, before)


@pytest.mark.parametrize("targets", ["attention", "ffn", "in_proj,linear2"])
def test_merged_equals_unmerged(targets):
    model = classifier()
    add_lora(model, LoraConfig(rank=3, alpha=5, targets=expand_targets(targets)))
    randomise_adapters(model)
    ids, mask = inputs()
    adapted = model(ids, mask).logits
    base = classifier()
    assert not torch.allclose(adapted, base(ids, mask).logits, atol=1e-4)  # the adapter changed something
    merged = merge_lora(model)
    assert merged == len(expand_targets(targets)) * 2
    assert not any(isinstance(m, LoraLinear) for m in model.modules())
    assert torch.allclose(model(ids, mask).logits, adapted, atol=1e-5)
    assert set(model.state_dict()) == set(base.state_dict())  # a plain model again, same parameter names


def test_only_adapters_and_named_parameters_train():
    model = classifier()
    add_lora(model, LoraConfig(rank=2, targets=["attention"]))
    names = train_only(model, ("classifier.",))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(names) == trainable
    assert trainable == {n for n in trainable if n.endswith((".lora_a", ".lora_b")) or n.startswith("classifier.")}
    assert sum(n.endswith(".lora_a") for n in trainable) == 4 and "classifier.weight" in trainable
    ids, mask = inputs()
    model.train()
    model(ids, mask, labels=torch.tensor([0, 1, 2])).loss.backward()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="rank"):
        LoraConfig(rank=0)
    with pytest.raises(ValueError, match="no linear layer"):
        add_lora(classifier(), LoraConfig(targets=["query_proj"]))
    assert expand_targets("attention, ffn") == ["in_proj", "out_proj", "linear1", "linear2"]
