"""Checkpoint folders, written atomically: weights as safetensors, everything else as JSON.

A folder holds ``model.safetensors``, ``config.json``, ``tokenizer.json`` and, for resuming, ``optimizer.safetensors``,
``rng.safetensors`` and ``trainer_state.json`` (scheduler and data-order state). Nothing is ever unpickled. Resume
state written by older versions is brought to today's layout in one place, ``upgrade_checkpoint``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from tformer.errors import ModelFolderError
from tformer.files import set_usual_permissions, verify_checksums
from tformer.training.optim import decays

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
OPTIMIZER = "optimizer.safetensors"
STATE = "trainer_state.json"
RNG = "rng.safetensors"
MANIFEST = "checksums.json"
STAGING = re.compile(r"\.(step-\d+|[a-z]+)\.\w+")  # staging_dir's names: .step-00000004.k3j_x9a2, .best.0f2q8mzz
# Layout of the resume state. 1 (no "format" key): one optimizer parameter group (weight decay on every parameter)
# and, earliest, a single RNG state named "torch_cpu". 2: two groups (param_groups: matrices decay, the rest not)
# and one RNG state per rank ("torch_cpu_rank{r}").
FORMAT = 2


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
    set_usual_permissions(build)  # staging folders start private (mkdtemp); the committed folder must not be
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


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """``with staged_folder(final) as build:`` write the files into ``build``; they become ``final`` together
    (``commit_folder``). On any failure the half-written ``build`` is removed and ``final`` keeps its old
    contents; a full disk is reported naming ``final``."""
    build = staging_dir(final)
    try:
        yield build
        commit_folder(build, final)
    except BaseException as err:
        shutil.rmtree(build, ignore_errors=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"no space left on the device while writing {final}") from None
        raise


def remove_leftovers(folder: Path) -> list[str]:
    """Remove what a killed run leaves in ``folder``: staging folders (``.step-*``, ``.best.*``, ...) and temporary
    files, and put back a folder that ``commit_folder`` had moved aside (``X.old`` without ``X``). Call it only while
    holding the folder's lock. Returns the names removed or restored."""
    done = []
    for parent in (folder, folder / "checkpoints"):
        if not parent.is_dir():
            continue
        for path in sorted(parent.iterdir()):
            if STAGING.fullmatch(path.name) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith(".") and ".tmp" in path.name and path.is_file():
                path.unlink(missing_ok=True)
            elif path.name.endswith(".old") and path.is_dir():
                kept = path.with_name(path.name.removesuffix(".old"))
                if kept.exists():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.replace(path, kept)
            else:
                continue
            done.append(str(path.relative_to(folder)))
    return done


def verify_folder(folder: Path) -> None:
    """Raise ``ModelFolderError`` if a checkpoint is incomplete or a file does not match its checksum."""
    if not verify_checksums(folder):  # a damaged checksums.json itself is a ModelFolderError naming it
        raise ModelFolderError(f"{folder}: no {MANIFEST} (incomplete checkpoint)")


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


# ------------------------------------------------------------------------------------------- resume state


def save_training_state(
    folder: Path, trainer: dict[str, Any], optimizer: dict[str, Any], scheduler: dict[str, Any], rng: list[Tensor]
) -> None:
    """Write what resuming needs besides the weights: optimizer, scheduler, trainer state and every rank's RNG."""
    tensors, meta = optimizer_to_tensors(optimizer)
    save_file(tensors, str(folder / OPTIMIZER))
    save_file({f"torch_cpu_rank{r}": state for r, state in enumerate(rng)}, str(folder / RNG))
    state = {"format": FORMAT, "trainer": trainer, "optimizer": meta, "scheduler": scheduler}
    (folder / STATE).write_text(json.dumps(state, indent=2))


def load_training_state(folder: Path) -> dict[str, Any]:
    """The resume state of ``folder`` as written (``upgrade_checkpoint`` brings an old one up to date).

    Returns a dict with ``format``, ``trainer``, ``optimizer`` (an optimizer ``state_dict``), ``scheduler`` and
    ``rng`` (RNG state tensors by name).
    """
    state = json.loads((folder / STATE).read_text())
    state.setdefault("format", 1)
    state["optimizer"] = optimizer_from_tensors(load_file(str(folder / OPTIMIZER)), state["optimizer"])
    state["rng"] = load_file(str(folder / RNG))
    return state


def upgrade_checkpoint(state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """Bring a resume state read by ``load_training_state`` to the current ``FORMAT``, in place; returns it.

    ``model`` is the model being resumed: its trainable parameters, in ``model.parameters()`` order, are the ones
    the optimizer state refers to. Format 1 to 2: the one optimizer group is split into ``param_groups``' two
    (matrices decay, vectors do not; the per-parameter moments move with their parameters, the scheduler gets one
    rate per group), and an RNG state saved under the single-process name "torch_cpu" becomes rank 0's.
    """
    if state["format"] > FORMAT:
        raise ModelFolderError(f"resume state format {state['format']} is newer than this tformer reads ({FORMAT})")
    if "torch_cpu" in state["rng"]:
        state["rng"]["torch_cpu_rank0"] = state["rng"].pop("torch_cpu")
    if len(state["optimizer"]["param_groups"]) == 1:
        flags = [decays(p) for p in model.parameters() if p.requires_grad]
        state["optimizer"] = _split_by_decay(state["optimizer"], flags)
        state["scheduler"] = _one_rate_per_group(state["scheduler"], len(state["optimizer"]["param_groups"]))
    state["format"] = FORMAT
    return state


def _split_by_decay(optimizer: dict[str, Any], flags: list[bool]) -> dict[str, Any]:
    """An optimizer ``state_dict`` with a single group, regrouped as ``param_groups`` groups ``flags``' parameters."""
    (group,) = optimizer["param_groups"]
    old_ids = group["params"]
    if len(old_ids) != len(flags):
        raise ModelFolderError(
            f"the saved optimizer holds {len(old_ids)} parameters, the model has {len(flags)} trainable ones"
        )
    order = [i for i, f in zip(old_ids, flags) if f] + [i for i, f in zip(old_ids, flags) if not f]
    new_id = {old: new for new, old in enumerate(order)}
    n_decay = sum(flags)
    groups = [  # as param_groups makes them: decayed first
        {**group, "params": list(range(n_decay))},
        {**group, "weight_decay": 0.0, "params": list(range(n_decay, len(order)))},
    ]
    state = {new_id[old]: entry for old, entry in optimizer["state"].items()}
    return {"state": state, "param_groups": groups}


def _one_rate_per_group(scheduler: dict[str, Any], groups: int) -> dict[str, Any]:
    """A ``LambdaLR`` state of a one-group optimizer for ``groups`` groups that share its rate."""
    scheduler = dict(scheduler)
    for key in ("base_lrs", "_last_lr", "lr_lambdas"):
        if key in scheduler and len(scheduler[key]) == 1:
            scheduler[key] = scheduler[key] * groups
    return scheduler
