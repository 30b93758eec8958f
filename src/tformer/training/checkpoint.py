"""Checkpoint folders, written atomically: weights as safetensors, everything else as JSON.

A folder holds ``model.safetensors``, ``config.json``, ``tokenizer.json`` and, for resuming, ``optimizer.safetensors``
and ``trainer_state.json`` (scheduler, RNG and data-order state). Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import Tensor

from tformer.errors import ModelFolderError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
OPTIMIZER = "optimizer.safetensors"
STATE = "trainer_state.json"
MANIFEST = "checksums.json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def commit_folder(build: Path, final: Path) -> None:
    """Write checksums of every file in ``build``, fsync, then rename it to ``final`` (replacing any old one)."""
    manifest = {p.name: _sha256(p) for p in sorted(build.iterdir()) if p.is_file()}
    write_json_atomic(build / MANIFEST, manifest)
    for p in build.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(build)
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(build, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(build, final)
    _fsync_dir(final.parent)


def staging_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))


def verify_folder(folder: Path) -> None:
    """Raise ``ModelFolderError`` if a checkpoint is incomplete or a file does not match its checksum."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelFolderError(f"{folder}: no {MANIFEST} (incomplete checkpoint)")
    manifest = json.loads(manifest_path.read_text())
    for name, digest in manifest.items():
        path = folder / name
        if not path.is_file():
            raise ModelFolderError(f"{folder}: {name} is missing")
        if _sha256(path) != digest:
            raise ModelFolderError(f"{folder}: {name} is corrupted (checksum mismatch)")


def optimizer_to_tensors(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into flat tensors (for safetensors) and JSON-able metadata."""
    tensors, meta_state = {}, {}
    for index, entry in state["state"].items():
        meta_state[str(index)] = []
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            meta_state[str(index)].append(key)
    return tensors, {"param_groups": state["param_groups"], "state_keys": meta_state}


def optimizer_from_tensors(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state = {
        int(index): {key: tensors[f"{index}.{key}"] for key in keys} for index, keys in meta["state_keys"].items()
    }
    return {"state": state, "param_groups": meta["param_groups"]}
