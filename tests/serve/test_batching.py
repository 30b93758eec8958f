import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tformer.serve.batching import DynamicBatcher, QueueFullError


class Recorder:
    """A batch function that doubles numbers, records each call, and notices calls that overlap."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[tuple] = []
        self.delay = delay
        self.busy = False
        self.overlapped = False

    def __call__(self, key, items):
        if self.busy:
            self.overlapped = True
        self.busy = True
        time.sleep(self.delay)
        self.calls.append((key, list(items)))
        self.busy = False
        return [2 * x for x in items]


def submit_together(batcher, jobs):
    """Submit (key, items) jobs from one thread each, as close together as possible; their results in order."""
    start = threading.Barrier(len(jobs))

    def one(job):
        start.wait()
        return batcher.submit(*job).result(timeout=30)

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(one, jobs))


def test_jobs_arriving_together_share_one_call_and_get_their_own_results():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=32, max_wait_ms=200)
    results = submit_together(batcher, [("double", [i, 10 * i]) for i in range(6)])
    batcher.close()
    assert results == [[2 * i, 20 * i] for i in range(6)]
    assert len(run.calls) == 1 and len(run.calls[0][1]) == 12
    assert batcher.stats.to_dict() == {"calls": 1, "requests": 6, "items": 12, "largest_call": 12,
                                       "mean_call_size": 12.0}


def test_different_keys_get_different_calls():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=32, max_wait_ms=200)
    results = submit_together(batcher, [("a", [1]), ("b", [2]), ("a", [3]), ("b", [4])])
    batcher.close()
    assert results == [[2], [4], [6], [8]]
    assert sorted((key, sorted(items)) for key, items in run.calls) == [("a", [1, 3]), ("b", [2, 4])]


def test_a_call_never_holds_more_than_max_batch_size_items():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=4, max_wait_ms=100)
    results = submit_together(batcher, [("k", [i, i]) for i in range(7)])  # 14 items, 2 per job
    batcher.close()
    assert results == [[2 * i, 2 * i] for i in range(7)]
    assert all(len(items) <= 4 for _, items in run.calls)
    assert sum(len(items) for _, items in run.calls) == 14


def test_calls_never_overlap_under_concurrent_submits():
    run = Recorder(delay=0.002)
    batcher = DynamicBatcher(run, max_batch_size=3, max_wait_ms=0)
    results = submit_together(batcher, [("k", [i]) for i in range(24)])
    batcher.close()
    assert results == [[2 * i] for i in range(24)]
    assert not run.overlapped


def test_a_full_queue_refuses_at_once():
    release, started = threading.Event(), threading.Event()

    def blocked(key, items):
        started.set()
        release.wait(30)
        return items

    batcher = DynamicBatcher(blocked, max_batch_size=1, max_wait_ms=0, max_queue=2)
    running = batcher.submit("k", [0])
    assert started.wait(10)  # the worker holds job 0; the queue is empty again
    waiting = [batcher.submit("k", [1]), batcher.submit("k", [2])]
    t0 = time.monotonic()
    with pytest.raises(QueueFullError, match="2 requests are already waiting"):
        batcher.submit("k", [3])
    assert time.monotonic() - t0 < 0.1
    release.set()
    assert [running.result(10), *(f.result(10) for f in waiting)] == [[0], [1], [2]]
    batcher.close()


def test_an_error_reaches_every_job_of_that_call_and_the_worker_goes_on():
    def fails_on_negative(key, items):
        if any(x < 0 for x in items):
            raise ValueError("negative input")
        return items

    batcher = DynamicBatcher(fails_on_negative, max_batch_size=8, max_wait_ms=0)
    with pytest.raises(ValueError, match="negative input"):
        batcher.submit("k", [-1]).result(10)
    assert batcher.submit("k", [5]).result(10) == [5]
    batcher.close()


def test_close_finishes_queued_jobs_and_submit_restarts_the_worker():
    batcher = DynamicBatcher(Recorder(delay=0.01), max_batch_size=1, max_wait_ms=0)
    futures = [batcher.submit("k", [i]) for i in range(5)]
    batcher.close()
    assert [f.result(0) for f in futures] == [[0], [2], [4], [6], [8]]
    assert batcher.submit("k", [21]).result(10) == [42]
    batcher.close()


@pytest.mark.parametrize("items, message", [([], "at least one item"), ([1, 2, 3], "3 items in one request")])
def test_bad_jobs_are_refused(items, message):
    batcher = DynamicBatcher(Recorder(), max_batch_size=2)
    with pytest.raises(ValueError, match=message):
        batcher.submit("k", items)


@pytest.mark.parametrize("kwargs", [{"max_batch_size": 0}, {"max_queue": 0}, {"max_wait_ms": -1}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        DynamicBatcher(Recorder(), **kwargs)


def test_a_cancelled_job_leaves_the_queue_at_once_and_never_runs():
    release, started = threading.Event(), threading.Event()
    ran = []

    def blocked(key, items):
        started.set()
        release.wait(30)
        ran.extend(items)
        return items

    batcher = DynamicBatcher(blocked, max_batch_size=1, max_wait_ms=0, max_queue=2)
    running = batcher.submit("k", [0])
    assert started.wait(10)
    gone, kept = batcher.submit("k", [1]), batcher.submit("k", [2])
    assert batcher.cancel(gone) and batcher.queue.qsize() == 1
    assert not batcher.cancel(running)  # its call has started: it cannot be taken back
    newer = batcher.submit("k", [3])  # the dropped job's place is free again
    release.set()
    assert [running.result(10), kept.result(10), newer.result(10)] == [[0], [2], [3]]
    assert gone.cancelled() and ran == [0, 2, 3]
    batcher.close()
