"""Muon for a model's hidden matrices, AdamW for the rest: one optimizer, one state, one resume.

Muon (momentum orthogonalised by Newton-Schulz; Jordan et al. 2024) replaces each hidden weight matrix's momentum
``M`` by the nearest semi-orthogonal matrix, ``U V^T`` of ``M = U S V^T``, before applying it: every direction the
gradient history points in gets the same step, where Adam's per-element scaling lets a few large singular directions
dominate. Five iterations of a quintic Newton-Schulz map push every singular value of the normalised momentum into
about [0.7, 1.2] without computing an SVD. The update is then scaled by ``rms * sqrt(max(rows, cols))``, which
makes its root-mean-square ``rms`` times the learning rate whatever the matrix's shape: with ``rms = 0.2`` it matches
a typical AdamW update (Liu et al. 2025, "Muon is scalable for LLM training"), so one learning rate and schedule
serve both kinds of parameter; a larger ``rms`` gives the matrices bolder steps than the AdamW part. Embedding
tables, the output head and vectors (norm gains, biases) stay with AdamW, as in both papers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from tformer.training.optim import param_groups

# Coefficients of the quintic iteration X <- aX + b(XX^T)X + c(XX^T)^2 X, chosen (Jordan et al.) to raise small
# singular values fast rather than to converge exactly: singular values end in about [0.7, 1.2].
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
ADAMW_RMS = 0.2  # a typical AdamW update's RMS per unit of learning rate: Muon's default


def orthogonalize(matrix: Tensor, steps: int = 5, dtype: torch.dtype = torch.float32) -> Tensor:
    """An approximately semi-orthogonal matrix with ``matrix``'s singular vectors: ``U V^T`` of its SVD, its
    singular values pushed towards 1 by ``steps`` Newton-Schulz iterations computed in ``dtype``.

    Shapes: ``matrix`` (rows, cols) -> (rows, cols), float32.
    """
    if matrix.dim() != 2:
        raise ValueError(f"orthogonalize takes a matrix, got shape {tuple(matrix.shape)}")
    a, b, c = NEWTON_SCHULZ
    x = matrix.to(dtype)
    wide = x.size(0) <= x.size(1)
    if not wide:  # iterate on the wide orientation: the Gram matrix is (short side, short side)
        x = x.T
    x = x / (x.norm() + 1e-7)  # spectral norm <= Frobenius norm <= 1: inside the iteration's basin
    for _ in range(steps):
        gram = x @ x.T  # (short, short)
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.T).float()


def hidden_matrices(model: nn.Module, outside: Iterable[str] = ("embed.", "output.")) -> list[nn.Parameter]:
    """The trainable matrices Muon updates: 2-D parameters except those whose names start with ``outside`` (the
    token embedding and the output head, which are tables of per-token rows rather than linear maps between
    hidden spaces). Tied weights count once, as ``model.parameters()`` lists them."""
    prefixes = tuple(outside)
    return [p for name, p in model.named_parameters()
            if p.requires_grad and p.dim() == 2 and not name.startswith(prefixes)]


def muon_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters of ``model`` in three groups: ``[hidden matrices (Muon), other matrices (AdamW,
    decayed), vectors (AdamW, not decayed)]``: :func:`tformer.training.optim.param_groups` with its decayed group
    split in two. All three are always present, so the state's layout is fixed."""
    decayed, vectors = param_groups(model, weight_decay)
    hidden = {id(p) for p in hidden_matrices(model)}
    return [
        {**decayed, "params": [p for p in decayed["params"] if id(p) in hidden], "muon": True},
        {**decayed, "params": [p for p in decayed["params"] if id(p) not in hidden], "muon": False},
        {**vectors, "muon": False},
    ]


class Muon(torch.optim.Optimizer):
    """Muon on the groups marked ``"muon": True`` (2-D parameters), AdamW on the others.

    Args:
        params: parameter groups, e.g. from :func:`muon_param_groups`; a group without ``"muon"`` uses AdamW.
        lr: learning rate of both (Muon's update is RMS-matched to AdamW's, see the module docstring).
        momentum: Muon's momentum coefficient (Nesterov).
        rms: Muon's update RMS per unit of learning rate (0.2: AdamW's).
        betas, eps: AdamW's.
        weight_decay: decoupled, ``p -= lr * weight_decay * p`` before the step, for both.
        ns_steps: Newton-Schulz iterations.
        ns_dtype: precision of the iterations (bfloat16 halves their cost where the CPU has it).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.95, rms: float = ADAMW_RMS,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.0,
                 ns_steps: int = 5, ns_dtype: torch.dtype = torch.float32) -> None:
        if not lr > 0 or not rms > 0 or not 0 <= momentum < 1 or not all(0 <= b < 1 for b in betas) or ns_steps < 1:
            raise ValueError(f"Muon: need lr > 0, rms > 0, momentum and betas in [0, 1), ns_steps >= 1; got "
                             f"lr={lr!r}, rms={rms!r}, momentum={momentum!r}, betas={betas!r}, ns_steps={ns_steps!r}")
        defaults = dict(lr=lr, momentum=momentum, rms=rms, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        ns_steps=ns_steps, muon=False)
        super().__init__(params, defaults)
        self.ns_dtype = ns_dtype
        for group in self.param_groups:
            flat = [p for p in group["params"] if p.dim() != 2]
            if group["muon"] and flat:
                raise ValueError(f"Muon: a group marked muon holds a parameter of shape {tuple(flat[0].shape)}; "
                                 "only matrices can be orthogonalised")

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch.optim.Optimizer's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            update = self._muon_step if group["muon"] else self._adamw_step
            for p in group["params"]:
                if p.grad is not None:
                    if group["weight_decay"]:
                        p.mul_(1 - group["lr"] * group["weight_decay"])
                    update(p, group)
        return loss

    def _muon_step(self, p: Tensor, group: dict) -> None:
        state = self.state[p]
        if not state:
            state["momentum_buffer"] = torch.zeros_like(p, dtype=torch.float32)
        buffer, grad, mu = state["momentum_buffer"], p.grad.float(), group["momentum"]
        buffer.mul_(mu).add_(grad)
        direction = orthogonalize(grad.add(buffer, alpha=mu), group["ns_steps"], self.ns_dtype)  # Nesterov
        scale = group["rms"] * math.sqrt(max(p.shape))
        p.add_(direction.to(p.dtype), alpha=-group["lr"] * scale)

    def _adamw_step(self, p: Tensor, group: dict) -> None:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
        (beta1, beta2), grad = group["betas"], p.grad.float()
        state["step"] += 1
        t = float(state["step"])
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
        p.addcdiv_(state["exp_avg"].to(p.dtype), denom.to(p.dtype), value=-group["lr"] / (1 - beta1**t))
