"""Dynamic batching: requests that arrive within a few milliseconds of each other share one model call.

One worker thread makes every model call, so calls never overlap and one request cannot disturb another's state.
It takes the oldest waiting job, waits up to ``max_wait_ms`` for more (until ``max_batch_size`` items), groups the
jobs by what they ask for (a translation with beam 4 cannot share a call with an embedding), and runs each group
as one call. While a call runs, new jobs wait in a bounded queue; when that is full, ``submit`` fails at once so
the server can answer 503 instead of letting latency grow without bound. A job whose client has gone (or whose
time is up) is taken out of the queue with ``cancel``, so nobody's model time is spent on answers no one reads.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

# run(key, items) -> one result per item, in order; every item of the call shares the key.
BatchFunction = Callable[[Hashable, list[Any]], Sequence[Any]]


class QueueFullError(RuntimeError):
    """The batcher's queue holds ``max_queue`` jobs already; try again later."""


@dataclass
class Job:
    key: Hashable  # jobs with the same key may share a call
    items: list[Any]  # one request's inputs (e.g. its texts)
    future: Future = field(default_factory=Future)  # gets the list of this job's results


@dataclass
class BatchStats:
    calls: int = 0  # model calls made
    jobs: int = 0  # requests served
    items: int = 0  # inputs (texts) served
    largest_call: int = 0  # most items in one call

    @property
    def mean_call_size(self) -> float:
        return self.items / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"calls": self.calls, "requests": self.jobs, "items": self.items, "largest_call": self.largest_call,
                "mean_call_size": round(self.mean_call_size, 3)}


class DynamicBatcher:
    """Collects jobs from many threads or event loops and runs them, batched, on one worker thread.

    Args:
        run: makes one model call for items that share a key; returns one result per item.
        max_batch_size: most items in one call; a single job may not have more.
        max_wait_ms: how long the first job of a batch waits for others to join it.
        max_queue: most jobs waiting; more are refused with ``QueueFullError``.
    """

    def __init__(self, run: BatchFunction, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_queue: int = 256) -> None:
        for name, value in (("max_batch_size", max_batch_size), ("max_queue", max_queue)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {max_wait_ms}")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.stats = BatchStats()
        self._carry: Job | None = None  # a job that did not fit the previous batch goes first in the next
        self._stopping = False  # close() was seen while collecting: serve that batch, then stop
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, key: Hashable, items: list[Any]) -> Future:
        """Queue one request's items; the future gets their results (or the call's exception)."""
        if not items:
            raise ValueError("a job needs at least one item")
        if len(items) > self.max_batch_size:
            raise ValueError(f"{len(items)} items in one request; the limit is {self.max_batch_size}")
        self.start()
        job = Job(key, list(items))
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFullError(f"the server is busy: {self.queue.maxsize} requests are already waiting") from None
        return job.future

    def cancel(self, future: Future) -> bool:
        """Drop the job of ``future`` if no model call has taken it yet: True if dropped (it will never run), False
        if its call has started (or ended). A dropped job frees its place in the queue at once."""
        if not future.cancel():
            return False
        with self.queue.mutex:  # queue.Queue keeps its items in a deque guarded by this lock
            for job in self.queue.queue:
                if job is not None and job.future is future:
                    self.queue.queue.remove(job)
                    self.queue.not_full.notify()
                    break
        return True

    def start(self) -> None:
        """Start the worker thread (again, after ``close``); ``submit`` does this when needed."""
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="tformer-batcher", daemon=True)
                self._worker.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the jobs already queued, then stop the worker."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None and worker.is_alive():
            self.queue.put(None)
            worker.join(timeout)

    def _work(self) -> None:
        self._stopping = False
        while True:
            batch = self._collect()
            if batch is None:
                break
            for key, jobs in group_by_key(batch).items():
                self._call(key, jobs)
        while True:  # requests that came after close(): fail them rather than leave them waiting
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    def _collect(self) -> list[Job] | None:
        """The next batch: the first job, then whatever arrives within ``max_wait`` and fits. None = stop."""
        first, self._carry = self._carry, None
        while first is None or not first.future.set_running_or_notify_cancel():  # skip requests already gone
            if self._stopping:
                return None
            first = self.queue.get()
            if first is None:
                return None
        batch, size = [first], len(first.items)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch_size:
            try:
                job = self.queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if job is None:
                self._stopping = True
                break
            if size + len(job.items) > self.max_batch_size:
                self._carry = job
                break
            if job.future.set_running_or_notify_cancel():
                batch.append(job)
                size += len(job.items)
        return batch

    def _call(self, key: Hashable, jobs: list[Job]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            results = list(self.run(key, items))
            if len(results) != len(items):
                raise RuntimeError(f"the batch function returned {len(results)} results for {len(items)} items")
        except Exception as err:  # handed to every waiting request; the worker keeps going
            for job in jobs:
                job.future.set_exception(err)
            return
        self.stats.calls += 1
        self.stats.jobs += len(jobs)
        self.stats.items += len(items)
        self.stats.largest_call = max(self.stats.largest_call, len(items))
        start = 0
        for job in jobs:
            job.future.set_result(results[start : start + len(job.items)])
            start += len(job.items)


def group_by_key(jobs: list[Job]) -> dict[Hashable, list[Job]]:
    """Jobs grouped by key, groups in order of their first job (dicts keep insertion order)."""
    groups: dict[Hashable, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.key, []).append(job)
    return groups
