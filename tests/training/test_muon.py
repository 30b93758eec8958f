"""Muon (training/muon.py): the Newton-Schulz map keeps the singular vectors and pushes the singular values towards
1, the update's RMS matches AdamW's, the AdamW half is torch's AdamW, the groups split a model as documented, and the
state round-trips (exact resume)."""

import copy

import pytest
import torch

from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.training.muon import Muon, hidden_matrices, muon_param_groups, orthogonalize


def tiny_lm(tie: bool = True) -> CausalLM:
    return CausalLM(CausalLMConfig(vocab_size=29, d_model=24, num_layers=2, num_heads=4, num_kv_heads=2, d_ff=40,
                                   max_len=16, dropout=0.0, positions="rotary", norm="rmsnorm", activation="swiglu",
                                   bias=False, tie_embeddings=tie, pad_id=0, bos_id=0, eos_id=0))


@pytest.mark.parametrize("shape", [(24, 72), (40, 24), (32, 32)])
def test_orthogonalize_keeps_singular_vectors_and_flattens_singular_values(shape):
    torch.manual_seed(0)
    u, _, vt = torch.linalg.svd(torch.randn(shape), full_matrices=False)
    s = torch.logspace(0, -3, min(shape))  # singular values over three decades
    matrix = u @ torch.diag(s) @ vt
    out = orthogonalize(matrix)
    assert out.shape == matrix.shape
    inner = u.T @ out @ vt.T  # diagonal when out shares matrix's singular vectors
    diag = inner.diagonal()
    assert (inner - torch.diag(diag)).abs().max() < 1e-3
    assert diag[: min(shape) // 2].min() > 0.6 and diag.max() < 1.25  # the upper half reached ~1 (the tail is 1e-3)
    plain = torch.linalg.svdvals(matrix)
    assert plain.max() / plain[min(shape) // 2] > 10  # ... where the input's spanned a decade or more


def test_orthogonalize_rejects_what_is_not_a_matrix():
    with pytest.raises(ValueError, match=r"matrix, got shape \(3,\)"):
        orthogonalize(torch.ones(3))


@pytest.mark.parametrize("tie", [True, False])
def test_groups_hold_every_trainable_parameter_once_and_muon_only_hidden_matrices(tie):
    model = tiny_lm(tie)
    hidden, tables, vectors = muon_param_groups(model, 0.1)
    assert hidden["muon"] and not tables["muon"] and not vectors["muon"]
    assert (hidden["weight_decay"], tables["weight_decay"], vectors["weight_decay"]) == (0.1, 0.1, 0.0)
    ids = [id(p) for g in (hidden, tables, vectors) for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters()) and len(set(ids)) == len(ids)
    assert {id(p) for p in hidden["params"]} == {id(p) for p in hidden_matrices(model)}
    assert id(model.embed.weight) in {id(p) for p in tables["params"]}
    assert id(model.output.weight) not in {id(p) for p in hidden["params"]}
    assert len(tables["params"]) == (1 if tie else 2) and len(hidden["params"]) == 2 * 4  # 4 matrices a layer


def test_a_group_without_muon_is_torch_adamw():
    torch.manual_seed(0)
    a, b = tiny_lm(), tiny_lm()
    b.load_state_dict(a.state_dict())
    ours = Muon([{"params": list(a.parameters()), "weight_decay": 0.1}], lr=1e-2, betas=(0.9, 0.99))
    theirs = torch.optim.AdamW(b.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    ids = torch.randint(1, 29, (2, 9))
    for _ in range(3):
        for model, opt in ((a, ours), (b, theirs)):
            model(ids).logsumexp(-1).mean().backward()  # logits (batch, seq, vocab)
            opt.step()
            opt.zero_grad()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7, msg=name)


def test_muon_step_is_orthogonal_with_adamw_sized_rms():
    torch.manual_seed(1)
    weight = torch.nn.Parameter(torch.randn(48, 16))
    opt = Muon([{"params": [weight], "muon": True}], lr=0.01, momentum=0.9)
    weight.grad = torch.randn(48, 16) @ torch.diag(torch.logspace(0, -2, 16))  # badly conditioned gradient
    before = weight.detach().clone()
    opt.step()
    step = (before - weight.detach()) / 0.01
    singular = torch.linalg.svdvals(step / (0.2 * 48**0.5))
    assert singular.min() > 0.6 and singular.max() < 1.25  # every direction gets a step of about the same size
    assert 0.12 < step.pow(2).mean().sqrt() < 0.25  # RMS ~0.2, AdamW's typical update RMS
    with pytest.raises(ValueError, match="only matrices"):
        Muon([{"params": [torch.nn.Parameter(torch.ones(4))], "muon": True}])


def test_state_round_trip_continues_exactly():
    torch.manual_seed(2)
    model = tiny_lm()
    ids = torch.randint(1, 29, (3, 10))

    def steps(m, opt, n):
        for _ in range(n):
            m(ids).logsumexp(-1).mean().backward()
            opt.step()
            opt.zero_grad()

    opt = Muon(muon_param_groups(model, 0.1), lr=1e-2)
    steps(model, opt, 2)
    twin = tiny_lm()
    twin.load_state_dict(model.state_dict())
    copy_opt = Muon(muon_param_groups(twin, 0.1), lr=1e-2)
    copy_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # as a file would: torch keeps loaded tensors
    steps(model, opt, 2)
    steps(twin, copy_opt, 2)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))
