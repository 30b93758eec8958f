"""LoRA: low-rank adaptation of linear layers (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language
Models").

A frozen layer W x + b gets a trainable update of rank r: ``y = W x + b + (alpha / r) · B (A x)``, A (r, in) and
B (out, r). B starts at zero, so an adapted model starts exactly as the base model. Only A and B (and whatever
else is left trainable, e.g. a classification head) need storing; for inference the update is merged into the
weight, ``W' = W + (alpha / r) · B A``, and the layer is a plain linear layer again, as fast as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tformer.nn.linear import activate

# Short names for groups of target layers, by their attribute names in tformer.nn (attention's fused Q/K/V
# projection and output projection, the feed-forward network's two layers).
TARGET_GROUPS = {
    "attention": ("in_proj", "out_proj"),
    "ffn": ("linear1", "linear2"),
    "all": ("in_proj", "out_proj", "linear1", "linear2"),
}


@dataclass
class LoraConfig:
    """Which linear layers get an adapter, and its rank and scale (``alpha / rank``)."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0  # on the adapter's input only
    targets: list[str] = field(default_factory=lambda: list(TARGET_GROUPS["all"]))

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {self.rank}")
        if self.alpha <= 0:
            raise ValueError(f"LoRA alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        self.targets = expand_targets(self.targets)


def expand_targets(targets: str | Iterable[str]) -> list[str]:
    """'attention,ffn' or ['in_proj', 'linear2'] -> layer attribute names, groups expanded, order kept."""
    names = targets.split(",") if isinstance(targets, str) else list(targets)
    out: list[str] = []
    for name in (n.strip() for n in names):
        for layer in TARGET_GROUPS.get(name, (name,)):
            if layer and layer not in out:
                out.append(layer)
    if not out:
        raise ValueError(f"no LoRA target layers given (groups: {', '.join(TARGET_GROUPS)}, or layer names)")
    return out


class LoraLinear(nn.Module):
    """A frozen linear layer plus a trainable rank-r update: ``base(x) + (alpha / r) · B (A x)``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.rank, self.alpha = rank, alpha
        self.scaling = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, dtype=base.weight.dtype))  # (r, in)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))  # (out, r)
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.dropout = nn.Dropout(dropout)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def update(self, x: Tensor) -> Tensor:
        """The low-rank term (alpha / r) · B (A x): (..., in) -> (..., out)."""
        return (self.dropout(x) @ self.lora_a.T @ self.lora_b.T) * self.scaling

    def forward(self, x: Tensor, activation: str | None = None) -> Tensor:
        """x (..., in_features) -> (..., out_features), then ``activation`` as ``tformer.nn.linear.Linear`` does."""
        out = self.base(x) + self.update(x)
        return out if activation is None else activate(out, activation)

    def rows(self, x: Tensor, rows: slice) -> Tensor:
        """x times the output rows ``rows`` only (attention asks for the query block of a fused Q/K/V layer)."""
        return self.base.rows(x, rows) + self.update(x)[..., rows]

    def merged_weight(self) -> Tensor:
        """W + (alpha / r) · B A, (out, in)."""
        return self.base.weight + self.scaling * (self.lora_b @ self.lora_a)

    def merge(self) -> nn.Linear:
        """The base layer with the update folded into its weight (the adapter is not changed)."""
        with torch.no_grad():
            self.base.weight.copy_(self.merged_weight())
        return self.base

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}"


def add_lora(model: nn.Module, config: LoraConfig) -> list[str]:
    """Wrap every linear layer whose attribute name is one of ``config.targets`` in a ``LoraLinear``, in place.

    Returns the wrapped layers' qualified names; raises ``ValueError`` when no layer matches.
    """
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in config.targets and isinstance(child, nn.Linear):
                setattr(module, child_name, LoraLinear(child, config.rank, config.alpha, config.dropout))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise ValueError(f"no linear layer named {config.targets} in {type(model).__name__}")
    return wrapped


def train_only(model: nn.Module, trainable: Sequence[str] = ()) -> list[str]:
    """Freeze every parameter except the LoRA matrices and those whose name starts with one of ``trainable``
    (e.g. ``("classifier.", "bert.pooler.")``). Returns the names left trainable."""
    names = []
    for name, param in model.named_parameters():
        keep = ".lora_a" in f".{name}" or ".lora_b" in f".{name}" or name.startswith(tuple(trainable))
        param.requires_grad_(keep)
        if keep:
            names.append(name)
    return names


def merge_lora(model: nn.Module) -> int:
    """Replace every ``LoraLinear`` in ``model`` by its merged base layer, in place; returns how many."""
    merged = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoraLinear):
                setattr(module, child_name, child.merge())
                merged += 1
    return merged
