"""`Idempotency-Key` on POST requests: a client that retries after a timeout or a dropped
connection gets the first answer again, instead of a second order, shipment or bulk job.

The first request with a key is recorded as in progress, run, and its answer stored; a retry with
the same key and the same request replays that answer (header `Idempotent-Replayed: true`); the
same key with a different request is refused (422), and one that arrives while the first is still
running gets 409. A 5xx answer is not kept, so the retry runs again; nor is a 401 or 403 (a refusal
of the caller, not an answer to the request). Keys are per service, and a request is the same only
for the same caller (the token's subject), so no one is replayed another caller's answer.

The answer is stored after the effect, so a crash between the two would make the retry run the
request again. That second run must find the effect already done, so the key also travels with
the effect, in the same write: `request_effect_id()` names it for the aggregate store, which keeps
it in the aggregate's inbox (skipping a repeat), and `derived_id()` gives a created resource an
id of the key's own, so the second run finds the first one's order, shipment or job.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import JsonValue
from pymongo import IndexModel
from pymongo.errors import DuplicateKeyError

from shared import clock
from shared.events import current_actor
from shared.http import error_body
from shared.mongo import Collection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
_NAMESPACE = uuid.UUID("6f1d3c1e-5a7b-4e39-9a51-3c0f1c2b7d10")


@dataclass
class _KeyedRequest:
    key: str
    touched: set[str] = field(default_factory=set)


_current: ContextVar[_KeyedRequest | None] = ContextVar("idempotent_request", default=None)


def request_effect_id(aggregate: str) -> str | None:
    """The inbox id under which this request's first change to `aggregate` is recorded, or None
    outside a keyed request. Only the first change to each aggregate carries it: a request that
    changes one aggregate twice must not skip its own second step."""
    request = _current.get()
    if request is None or aggregate in request.touched:
        return None
    request.touched.add(aggregate)
    return f"request:{request.key}"


def derived_id(kind: str) -> str | None:
    """A created resource's id derived from the request's Idempotency-Key (None without one),
    so that running the request twice names the same resource twice."""
    request = _current.get()
    return None if request is None else str(uuid.uuid5(_NAMESPACE, f"{kind}:{request.key}"))


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        collection: Collection,
        in_flight_seconds: float = 10.0,
        keep_seconds: float = 86_400.0,
    ) -> None:
        self.app = app
        self.collection = collection
        self.in_flight = timedelta(seconds=in_flight_seconds)
        self.keep_seconds = keep_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, HEADER) if scope["type"] == "http" and scope["method"] == "POST" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            await _answer(
                send, 422, error_body("invalid_request", f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters")
            )
            return
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            b"\n".join([(current_actor() or "").encode(), scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        if not await self._begin(key, fingerprint, send):
            return

        status, headers, chunks = 500, [], []

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        # Per caller: the same key from two callers names two requests and two effects.
        token = _current.set(_KeyedRequest(hashlib.sha256(json.dumps([current_actor(), key]).encode()).hexdigest()))
        try:
            await self.app(scope, replay_body, capture)
        finally:
            _current.reset(token)
            if status >= 500 or status in (401, 403):
                await self.collection.delete_one({"_id": key, "state": "in_progress"})
            else:
                content_type = dict(headers).get(b"content-type", b"application/json").decode()
                await self.collection.update_one(
                    {"_id": key},
                    {"$set": {"state": "done", "status": status, "content_type": content_type,
                              "body": b"".join(chunks).decode("utf-8", "replace")}},
                )  # fmt: skip

    async def _begin(self, key: str, fingerprint: str, send: Send) -> bool:
        """Record the key as in progress; False when the answer was already given here."""
        now = clock.now()
        record = {"_id": key, "fingerprint": fingerprint, "state": "in_progress", "started_at": now.isoformat(),
                  "expires_epoch": now.timestamp() + self.keep_seconds}  # fmt: skip
        try:
            await self.collection.insert_one(record)
            return True
        except DuplicateKeyError:
            existing = await self.collection.find_one({"_id": key})
        if existing is None:  # expired or abandoned between the two calls: run it
            return await self._begin(key, fingerprint, send)
        if existing.get("expires_epoch", now.timestamp()) < now.timestamp():
            # Past its keeping time but not yet swept: a new request (what it created it still finds).
            await self.collection.delete_one({"_id": key, "expires_epoch": {"$eq": existing["expires_epoch"]}})
            return await self._begin(key, fingerprint, send)
        if existing["fingerprint"] != fingerprint:
            message = "this Idempotency-Key was used for a different request; use a new key"
            await _answer(send, 422, error_body("idempotency_key_reused", message))
            return False
        if existing["state"] == "done":
            await _answer(send, existing["status"], existing["body"], existing["content_type"], replayed=True)
            return False
        if clock.parse(existing["started_at"]) < now - self.in_flight:
            # The first attempt died mid-way (its process crashed): this retry takes over, and finds
            # whatever the first one did through the key it left in the effect. Only one taker wins.
            taken = await self.collection.replace_one(
                {"_id": key, "state": "in_progress", "started_at": existing["started_at"]}, record
            )
            if taken.modified_count == 1:
                return True
        message = "a request with this Idempotency-Key is still being processed; retry shortly"
        await _answer(send, 409, error_body("request_in_progress", message))
        return False


# The keys are found by when they expire: a numeric field, so the sweep is an indexed range on
# the embedded store as on MongoDB (where a TTL index on a date would do the same job).
EXPIRY_INDEX = IndexModel([("expires_epoch", 1)])


async def forget_expired(collection: Collection) -> int:
    """Delete the keys past their keeping time; returns how many."""
    now = clock.epoch_now()
    return (await collection.delete_many({"expires_epoch": {"$lt": now}})).deleted_count


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope.get("headers", []):
        if header.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer(
    send: Send, status: int, body: Any, content_type: str = "application/json", replayed: bool = False
) -> None:
    payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(payload)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


HEADER_PARAMETER: dict[str, JsonValue] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string (a UUID, say), the same on each retry of this request: a retry gets the "
    "first answer again (with `Idempotent-Replayed: true`) instead of doing it twice. The same key with another "
    "request is 422 (idempotency_key_reused); one still being processed, 409 (request_in_progress). Keys are kept "
    "a day, per caller.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
    },
    "example": "3f0c9a4e-6a53-4f5e-9d57-2b1a8f0e7c11",
}
"""The `Idempotency-Key` request header as OpenAPI documents it on every POST (shared/openapi.py)."""

REPLAYED_HEADER: dict[str, JsonValue] = {
    "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}
