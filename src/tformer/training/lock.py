"""One training run per output folder: an exclusive OS lock (``flock``) on ``OUT/.lock`` for as long as the run lives.

The operating system drops the lock when the process ends, however it ends (normal exit, exception, kill -9), so a
``.lock`` file left behind by a dead run never blocks the next one. The file holds the owner's process id only to
name it in the message a second run gets.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tformer.errors import TformerError

LOCK_FILE = ".lock"


class OutputFolderBusyError(TformerError):
    """Another live process holds the output folder's lock."""


class OutputLock:
    """``OutputLock(folder).acquire()`` takes ``folder``'s lock or raises ``OutputFolderBusyError`` at once."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputFolderBusyError(
                f"{self.folder} is in use by another training run (process {owner}); wait for it to end, or give "
                "another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __del__(self) -> None:
        self.release()
