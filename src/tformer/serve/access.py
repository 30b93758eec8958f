"""One access-log line per request: method, path, status and time taken (``tformer serve --quiet`` turns it off)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Send


def print_line(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


class AccessLog:
    """ASGI middleware writing ``METHOD PATH STATUS MS`` after each HTTP request (status 499 when the client left
    before an answer started). Placed outermost, so refusals by the guard (401, 413) are logged too."""

    def __init__(self, app: Any, write: Callable[[str], None] = print_line) -> None:
        self.app, self.write = app, write

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 499

        async def noting_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except Exception:
            status = 500
            raise
        finally:
            ms = (time.perf_counter() - start) * 1000
            self.write(f"{scope['method']} {scope['path']} {status} {ms:.1f} ms")
