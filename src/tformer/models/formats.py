"""Checkpoint formats of other libraries, registered by ``interop/`` so that ``models/`` never imports it.

A model's ``from_pretrained``/``save_pretrained`` ask this registry for the formats of the model's family
(``"bert"``, ...); a format module in ``interop/`` (which holds the foreign name tables) registers itself when it is
imported, and ``import tformer`` imports them. Dependencies thus point one way: ``interop`` -> ``models``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn


def _any_source(source: str | Path) -> bool:
    return True


@dataclass(frozen=True)
class CheckpointFormat:
    """One way to read (and perhaps write) a family's models.

    ``load(cls, source, **options)`` builds model class ``cls`` from ``source`` (a folder, file or short name);
    ``save(model, folder)`` writes one; ``recognises(source)`` says whether ``source`` is in this format (checked
    in registration order, so a catch-all format goes last).
    """

    name: str
    load: Callable[..., nn.Module]
    save: Callable[[nn.Module, str | Path], None] | None = None
    recognises: Callable[[str | Path], bool] = _any_source


_formats: dict[str, list[CheckpointFormat]] = {}


def register_checkpoint_format(family: str, checkpoint_format: CheckpointFormat) -> None:
    """Add ``checkpoint_format`` to ``family``'s formats, replacing one of the same name (a module reloaded)."""
    formats = [f for f in _formats.get(family, []) if f.name != checkpoint_format.name]
    _formats[family] = [*formats, checkpoint_format]


def checkpoint_formats(family: str) -> list[CheckpointFormat]:
    """The registered formats of ``family``, in registration order."""
    return list(_formats.get(family, []))


def _registered(family: str) -> list[CheckpointFormat]:
    formats = checkpoint_formats(family)
    if not formats:
        raise RuntimeError(
            f"no checkpoint format is registered for {family!r} models; `import tformer` registers the formats "
            "of tformer.interop"
        )
    return formats


def load_checkpoint(family: str, cls: type[nn.Module], source: str | Path, **options: Any) -> Any:
    """``cls`` loaded from ``source`` by the first of ``family``'s formats that recognises it."""
    formats = _registered(family)
    for checkpoint_format in formats:
        if checkpoint_format.recognises(source):
            return checkpoint_format.load(cls, source, **options)
    names = ", ".join(f.name for f in formats)
    raise ValueError(f"{source}: not in a format that {cls.__name__} reads ({names})")


def save_checkpoint(family: str, model: nn.Module, folder: str | Path) -> None:
    """Write ``model`` with the first of ``family``'s formats that can write."""
    for checkpoint_format in _registered(family):
        if checkpoint_format.save is not None:
            checkpoint_format.save(model, folder)
            return
    raise RuntimeError(f"no registered format of {family!r} models can write a checkpoint")
