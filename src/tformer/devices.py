"""Where a model runs: ``--device`` and ``device=`` values checked once, with an error that says what exists."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"cpu"`` -> the CPU; ``"auto"`` -> the first GPU when there is one, else the CPU; ``"cuda"``,
    ``"cuda:1"``, ``"mps"`` -> that device, if this machine has it (else a ValueError saying what it has)."""
    if device is None or device == "auto" and not _has_gpu():
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r} (use cpu, cuda, cuda:N, mps or auto): {err}") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError(f"device {device!r} asked for, but this machine has no CUDA GPU (use --device cpu)")
        if chosen.index is not None and chosen.index >= count:
            raise ValueError(f"device {device!r} asked for, but this machine has {count} CUDA GPU(s): cuda:0.."
                             f"cuda:{count - 1}")
    if chosen.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} asked for, but MPS is not available here (use --device cpu)")
    return chosen


def _has_gpu() -> bool:
    return torch.cuda.is_available() or (hasattr(torch.backends, "mps") and torch.backends.mps.is_available())


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a module's weights are (the CPU for a module without any)."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX); elsewhere bfloat16 autocast is emulated
    and slower than float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without these probes
        return False


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bfloat16 autocast: asked for ("bf16"), or "auto" on a GPU with bfloat16 or a CPU with
    bfloat16 dot products (AVX512-BF16 or AMX), where the products run several times faster than in float32."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()
