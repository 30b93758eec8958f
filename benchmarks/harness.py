"""Timing and memory measurement shared by every benchmark case.

Sides of one comparison run in the same process, interleaved (side A, side B, side A, ...), after warm-up runs,
so drift in the machine's speed (another job, frequency scaling) hits every side alike. Peak memory is measured in
a separate, untimed run per side, by resetting the kernel's peak-RSS counter before it.
"""

from __future__ import annotations

import ctypes
import gc
import re
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class SideResult:
    """One side of a case: seconds per repeat and the work each repeat did (tokens, sentences, ...)."""

    name: str
    seconds: list[float]
    work: float  # units of work per repeat: tokens for training, sentences for translation, ...
    unit: str  # what ``work`` counts, e.g. "tokens"
    extra: dict = field(default_factory=dict)  # e.g. generated tokens per repeat, agreement with tformer
    peak_rss_mb: float | None = None  # peak resident memory during one run
    rss_growth_mb: float | None = None  # that peak minus the resident memory just before the run

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def throughput(self) -> float:
        """Work per second, from the median repeat."""
        return self.work / self.median_seconds

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(median_seconds=self.median_seconds, throughput=self.throughput)
        return data


def interleaved(sides: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Run each side ``warmup`` times untimed, then ``repeats`` timed rounds of every side in turn.

    Returns seconds per repeat for each side. The garbage collector is paused inside each timed call.
    """
    for _ in range(warmup):
        for run in sides.values():
            run()
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, run in sides.items():
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
            finally:
                gc.enable()
    return seconds


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_memory(run: Callable[[], object]) -> tuple[float, float]:
    """(peak RSS during ``run``, growth of RSS over what it was just before), in MiB.

    On Linux the peak counter is reset first, so the peak belongs to this run alone; elsewhere it is the
    process's peak so far (``ru_maxrss``).
    """
    gc.collect()
    _return_free_memory()
    before = rss_mb() if STATUS.exists() else 0.0
    reset = _reset_peak()
    run()
    if reset:
        peak = _status_kb("VmHWM") / 1024
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak, max(peak - before, 0.0)


def _return_free_memory() -> None:
    """Ask glibc to hand freed heap pages back, so RSS before a run counts live memory, not earlier runs' garbage."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")  # "5" resets the peak RSS (VmHWM) of this process
        return True
    except OSError:
        return False


def _status_kb(key: str) -> float:
    match = re.search(rf"^{key}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{key} not found in {STATUS}")
    return float(match.group(1))


def measure(
    sides: dict[str, Callable[[], object]],
    work: dict[str, float] | float,
    unit: str,
    repeats: int,
    warmup: int,
    peaks: dict[str, Callable[[], tuple[float, float]]] | None = None,
) -> dict[str, SideResult]:
    """Interleaved timing plus one peak-memory run per side; ``peaks`` names sides that measure their own
    (a side in a child process: see ``benchmarks.isolated``)."""
    seconds = interleaved(sides, repeats, warmup)
    results = {}
    for name, run in sides.items():
        amount = work[name] if isinstance(work, dict) else work
        peak, growth = peaks[name]() if peaks and name in peaks else peak_memory(run)
        results[name] = SideResult(name, seconds[name], amount, unit, peak_rss_mb=peak, rss_growth_mb=growth)
    return results
