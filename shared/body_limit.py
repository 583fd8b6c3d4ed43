"""The request body limit of every service, whatever the route and however the body comes.

A body declared larger than the limit (Content-Length) is refused before a byte of it is read; a
body without a length (chunked) is counted as it arrives and refused the moment it passes the
limit, without reading the rest. Either way the answer is 413 in the platform's error shape.

It must run before anything that reads the body (the Idempotency-Key middleware reads it whole),
so the service installs it outermost. Starlette's own RequestBodyLimitMiddleware does the same
counting but answers in plain text from some paths, hence this one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shared.http import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised from `receive` once the body passed the limit: whoever was reading stops there."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return

        received = 0
        refused = started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # whatever the app makes of the interrupted read, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if refused and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body must be at most {self.max_bytes} bytes"
        payload = json.dumps(
            error_body("payload_too_large", message, {"field": "body", "max_bytes": self.max_bytes})
        ).encode()
        # The connection is left open: the server discards the rest of the body unread, so the
        # client (still sending) gets to read this answer instead of a reset connection.
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = bytes(value).decode("latin-1").strip()
            return int(text) if text.isdigit() else None  # the server refuses malformed ones itself
    return None
