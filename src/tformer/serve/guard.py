"""What every request passes before the app sees it: the API key, when the server has one, and the body size limit,
enforced while the body is read whatever its transfer encoding (a chunked body has no Content-Length to check).

``RequestGuard`` is plain ASGI middleware. It also keeps each request's ``receive`` in ``CLIENT_RECEIVE``, so a
handler waiting for the model can notice that its client has gone (``client_gone``) and give its place back.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from starlette.exceptions import HTTPException

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CLIENT_RECEIVE: ContextVar[Receive | None] = ContextVar("tformer_client_receive", default=None)
# The page and the API docs carry no data and must load before anyone has typed a key; everything else needs it.
PUBLIC_PATHS = frozenset({"/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
PUBLIC_PREFIXES = ("/static-offline-docs/",)
UNAUTHORIZED = ("this server needs an API key: send the header 'Authorization: Bearer KEY' (the page asks for "
                "the key, or takes it from its address: http://HOST:PORT/#key=KEY)")


class BodyTooLargeError(HTTPException):
    """The body grew past the limit while it was being read (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body has more than {limit} bytes; the limit is {limit}",
                         headers={"Connection": "close"})


class RequestGuard:
    """ASGI middleware: 401 without the right API key, 413 for a body over ``max_body_bytes``.

    Args:
        app: the ASGI app to guard.
        max_body_bytes: the largest body accepted, counted as it arrives.
        api_key: the key clients must send as ``Authorization: Bearer KEY``; None = no key needed.
    """

    def __init__(self, app: Any, max_body_bytes: int, api_key: str | None = None) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # names come lower-cased from the server
        if self.api_key is not None and not is_public(scope["path"]) and not self.authorized(headers):
            await reply(send, 401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
            return
        size = headers.get(b"content-length", b"")
        if size.isdigit() and int(size) > self.max_body_bytes:  # refused before a byte of it is read
            await reply(send, 413, f"the request body has {int(size)} bytes; the limit is {self.max_body_bytes}",
                        {"Connection": "close"})
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        token = CLIENT_RECEIVE.set(limited_receive)
        try:
            await self.app(scope, limited_receive, send)
        finally:
            CLIENT_RECEIVE.reset(token)

    def authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        # compare_digest takes as long whatever the first differing byte, so timing does not reveal the key
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.api_key or b"")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def reply(send: Send, status: int, error: str, headers: dict[str, str]) -> None:
    """Answer ``{"error": ...}`` without passing the request on."""
    body = json.dumps({"error": error}).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def client_gone() -> None:
    """Return when the client of the current request disconnects; never, outside a guarded request.

    Call it only after the body has been read: from then on the server's ``receive`` answers only a disconnect.
    """
    receive = CLIENT_RECEIVE.get()
    if receive is None:
        await asyncio.Event().wait()
        return
    while (await receive())["type"] != "http.disconnect":
        pass
