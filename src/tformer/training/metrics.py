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

from tformer.errors import DataError
from tformer.files import write_text_atomic

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
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as err:  # e.g. a full disk: name the file, and leave no empty one behind
            if self.path.is_file() and self.path.stat().st_size == 0:
                self.path.unlink()
            raise OSError(err.errno, f"{err.strerror or err} while writing {self.path}") from None

    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._lines()]

    def training_time(self) -> dict[str, Any]:
        """Updates and counted training minutes of the run, from the last row that has both ``step`` and
        ``seconds`` (rows written after training, such as a checkpoint average, have neither)."""
        timed = [row for row in self.rows() if "step" in row and "seconds" in row]
        last = timed[-1] if timed else {}
        return {"updates": last.get("step"), "training_minutes": round(last.get("seconds", 0) / 60, 1)}

    def _lines(self) -> list[str]:
        """The file's rows as text. A torn last line (the run was killed while writing it) is dropped with a
        warning; a bad line elsewhere is an error naming the file and line."""
        if not self.path.is_file():
            return []
        lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            try:
                json.loads(line)
            except json.JSONDecodeError as err:
                if number < len(lines):
                    raise DataError(f"{self.path}:{number}: not a JSON row ({err.msg})") from None
                log(f"warning: {self.path}: dropped its torn last line (a run stopped while writing it)")
                lines.pop()
        return lines

    def clear(self) -> None:
        if self.enabled:
            self.path.unlink(missing_ok=True)

    def drop_after(self, step: int, kinds: tuple[str, ...] = ()) -> None:
        """Forget rows logged after ``step`` (a resumed run redoes that work), and rows of ``kinds`` (a run's
        end-of-run products, which it makes again); the file is replaced atomically."""
        if not self.enabled or not self.path.is_file():
            return
        rows = [(line, json.loads(line)) for line in self._lines()]
        kept = [line for line, row in rows if row.get("step", 0) <= step and row.get("kind") not in kinds]
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))
