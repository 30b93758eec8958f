"""What a training run reports: progress lines on stderr and one JSON row per event in ``metrics.jsonl``.

Both training loops (translation and fine-tuning) report through these, from rank 0 only under torchrun.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

METRICS = "metrics.jsonl"

# Called on rank 0 with the path of ``metrics.jsonl`` after each evaluation and at the end of a run (e.g. to draw
# training curves: the CLI passes one; ``training/`` itself draws nothing).
MetricsCallback = Callable[[Path], None]


def is_main_process() -> bool:
    """True outside torchrun and on its rank 0."""
    return os.environ.get("RANK", "0") == "0"


def log(message: str) -> None:
    """A progress message on stderr, from rank 0 only under torchrun."""
    if is_main_process():
        print(message, file=sys.stderr, flush=True)


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, appended as the run goes; only the main process writes."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path, self.enabled = Path(path), enabled

    def append(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def clear(self) -> None:
        if self.enabled:
            self.path.unlink(missing_ok=True)

    def drop_after(self, step: int) -> None:
        """Forget rows logged after ``step`` (a resumed run redoes that work); the file is replaced atomically."""
        if not self.enabled or not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.path)
