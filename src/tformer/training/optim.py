"""The optimizer's parameter groups, one rule for every training loop: weight decay on matrices only.

As nanoGPT's ``configure_optimizers`` and BERT's fine-tuning recipe do: parameters with two or more dimensions
(projection matrices, embedding tables) decay; biases and LayerNorm gains (one dimension) do not.
"""

from __future__ import annotations

from torch import nn


def decays(parameter: nn.Parameter) -> bool:
    """Whether weight decay applies to ``parameter``: matrices and tables yes, vectors and scalars no."""
    return parameter.dim() >= 2


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters of ``model`` in two groups: ``[decayed, not decayed]``.

    Both groups are always present (possibly empty), so an optimizer's state always has the same layout.
    Parameters keep ``model.parameters()``'s order within each group.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if decays(p)], "weight_decay": weight_decay},
        {"params": [p for p in params if not decays(p)], "weight_decay": 0.0},
    ]
