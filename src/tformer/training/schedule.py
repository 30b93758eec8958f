"""The paper's learning-rate schedule: linear warm-up, then decay with the inverse square root of the step."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def inverse_sqrt_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the peak rate: step / warmup while warming up, sqrt(warmup / step) after.

    Equals the paper's d_model^-0.5 * min(step^-0.5, step * warmup^-1.5) up to the constant peak rate.
    """
    step = max(step, 1)
    return min(step / warmup_steps, (warmup_steps / step) ** 0.5)


def inverse_sqrt_schedule(optimizer: Optimizer, warmup_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: inverse_sqrt_factor(step, warmup_steps))


def linear_warmup_decay_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1, then linear decay to 0 at ``total_steps`` (BERT fine-tuning)."""
    if step < warmup_steps:
        return (step + 1) / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def linear_warmup_decay_schedule(optimizer: Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: linear_warmup_decay_factor(step, warmup_steps, total_steps))
