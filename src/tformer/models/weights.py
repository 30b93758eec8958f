"""Loading a model's own state dict from a file's tensors, checked name by name and shape by shape."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def load_checked(
    module: nn.Module, expected: dict[str, Tensor], tensors: dict[str, Tensor], source: str, dtype: torch.dtype,
    error: type[Exception] = ValueError,
) -> None:
    """Load ``tensors`` into ``module`` (cast to ``dtype``; names absent from ``expected``, such as a tied weight,
    are left alone). A missing or unexpected name, or a shape unlike ``expected``'s, raises ``error`` naming
    ``source`` and the tensor."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise error(f"{source}: {len(missing)} missing weight(s) {missing[:5]}, {len(unexpected)} unexpected "
                    f"{unexpected[:5]}")
    for name, value in tensors.items():
        if value.shape != expected[name].shape:
            raise error(f"{source}: {name} has shape {tuple(value.shape)}, the model expects "
                        f"{tuple(expected[name].shape)}")
    module.load_state_dict({k: v.to(dtype) for k, v in tensors.items()}, strict=False)
