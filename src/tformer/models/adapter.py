"""Adapters: a fine-tuned model stored as only the parameters fine-tuning changed, on top of a named base checkpoint.

Fine-tuning MiniLM with its word embeddings frozen changes every other parameter; those are 10.8M of its 22.7M, so
storing them in float16 over the packaged encoder takes 22 MB instead of a full 45 MB copy. The folder holds
``adapter.json`` (the base's name, the stored dtype, the model's architecture and config) and
``adapter.safetensors``. The bundled question-answering and sentiment models are shipped this way.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tformer.errors import ModelFolderError

ADAPTER_FILE = "adapter.json"  # {"base", "dtype", "weights", "architecture", "config"}
ADAPTER_WEIGHTS = "adapter.safetensors"


def is_adapter(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_FILE).is_file()


def save_adapter(model: nn.Module, folder: str | Path, base: str, names: list[str],
                 dtype: torch.dtype = torch.float16) -> None:
    """Write only the parameters ``names`` of ``model`` in ``dtype``, to be loaded on top of ``base`` (a
    checkpoint folder or short name). ``model`` needs a ``config`` with ``to_dict()``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    unknown = [n for n in names if n not in state]
    if unknown:
        raise ValueError(f"not parameters of the model: {unknown[:4]}")
    tensors = {n: state[n].detach().cpu().to(dtype).contiguous() for n in names}
    save_file(tensors, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    meta = {"base": base, "dtype": str(dtype).removeprefix("torch."), "weights": ADAPTER_WEIGHTS,
            "architecture": type(model).__name__, "config": model.config.to_dict()}
    (folder / ADAPTER_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_adapter_meta(folder: str | Path) -> dict:
    """``adapter.json`` of ``folder``, checked: its base and weight file must be named, the weights present."""
    path = Path(folder) / ADAPTER_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["base"], meta.setdefault("weights", ADAPTER_WEIGHTS)  # noqa: B018 - required field
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ModelFolderError(f"{path}: not a valid adapter description ({err})") from None
    if not (Path(folder) / meta["weights"]).is_file():
        raise ModelFolderError(f"{path}: weight file {meta['weights']} is missing")
    return meta


def apply_adapter(model: nn.Module, folder: str | Path) -> nn.Module:
    """Put the adapter's parameters of ``folder`` over ``model`` (the base, already loaded), in the model's dtype;
    names and shapes are checked first, so a mismatched adapter changes nothing. Returns ``model`` in eval mode."""
    meta = read_adapter_meta(folder)
    weights = Path(folder) / meta["weights"]
    state = model.state_dict()
    update = load_file(str(weights))
    unknown = sorted(set(update) - set(state))
    if unknown:
        raise ModelFolderError(f"{weights}: {len(unknown)} name(s) the model does not have: {unknown[:4]}")
    for name, tensor in update.items():
        if tensor.shape != state[name].shape:
            raise ModelFolderError(f"{weights}: {name} has shape {tuple(tensor.shape)}, the base model "
                                   f"{meta['base']!r} has {tuple(state[name].shape)}")
        state[name] = tensor.to(state[name].dtype)
    model.load_state_dict(state)
    return model.eval()
