"""A benchmark side that runs in a child process of its own.

CTranslate2 ships its own copy of the GNU OpenMP runtime. Once it has run in a process, PyTorch's OpenMP workers in
that process stop spin-waiting between parallel regions and have to be woken for each one: measured on the
benchmark machine, a small LayerNorm went from 4 us to 49-54 us, and beam-4 batch-1 translation by tformer from
1.9 s to 4.0 s (Hugging Face's ``generate`` from 4.5 s to 6.1 s), until the process ended. In one process, every
PyTorch side timed after a CTranslate2 side was slowed by CTranslate2's presence, not by its own work. So
CTranslate2 runs here, in a child process, as its users run it; the parent still interleaves it with the other
sides and times each call from the parent, so the pipe's round trip (well under a millisecond for a few hundred
sentences) counts against CTranslate2.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable
from typing import Any

from benchmarks.harness import peak_memory


class ChildSide:
    """Build ``factory(*args)`` (a callable) in a child process; calling this object calls that one there.

    ``factory`` must be importable by name (a module-level function), since the child is a fresh interpreter.
    """

    def __init__(self, factory: Callable[..., Callable[..., Any]], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_conn, factory, args), daemon=True)
        self._process.start()
        child_conn.close()
        self._receive()  # the child reports once its engine is loaded (or why it failed)

    def __call__(self, *args: Any) -> Any:
        self._conn.send(("call", args))
        return self._receive()

    def peak_memory(self, *args: Any) -> tuple[float, float]:
        """(peak RSS, growth) in MiB of one call, measured in the child (see ``harness.peak_memory``)."""
        self._conn.send(("peak", args))
        return self._receive()

    def close(self) -> None:
        if self._process.is_alive():
            self._conn.send(("stop", ()))
            self._process.join(timeout=30)
        self._conn.close()

    def _receive(self) -> Any:
        status, value = self._conn.recv()
        if status == "error":
            raise RuntimeError(f"benchmark child process failed: {value}")
        return value


def _serve(conn: Any, factory: Callable[..., Callable[..., Any]], args: tuple) -> None:
    try:
        engine = factory(*args)
    except Exception as error:  # reported to the parent, which raises it
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ok", None))
    while True:
        try:
            op, call_args = conn.recv()
        except EOFError:  # the parent has gone without saying stop
            return
        if op == "stop":
            return
        try:
            if op == "call":
                conn.send(("ok", engine(*call_args)))
            else:
                conn.send(("ok", peak_memory(functools.partial(engine, *call_args))))
        except Exception as error:
            conn.send(("error", f"{type(error).__name__}: {error}"))
