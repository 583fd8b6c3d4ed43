"""The request body limit as an ASGI middleware, driven with raw ASGI messages: it must refuse a
body over the limit whether Content-Length declares it or a chunked body only shows it while
arriving, and stop reading there (issue: "the 1 MB body limit is checked on Content-Length only
(chunked bodies of 10 MB are parsed)")."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from shared.body_limit import BodySizeLimit

Message = MutableMapping[str, Any]
LIMIT = 1_000
CHUNK = b"x" * 100


class Client:
    """Sends a body in chunks (without end unless `total` is given) and keeps what comes back."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.sent = 0
        self.pulls = 0
        self.answer: list[Message] = []

    async def receive(self) -> Message:
        self.pulls += 1
        remaining = None if self.total is None else self.total - self.sent
        body = CHUNK if remaining is None else CHUNK[: max(remaining, 0)]
        self.sent += len(body)
        more = remaining is None or self.sent < self.total  # type: ignore[operator]
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: Message) -> None:
        self.answer.append(message)

    @property
    def status(self) -> int:
        return int(self.answer[0]["status"])

    @property
    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.answer[1:]))


def scope(content_length: int | None = None) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {"type": "http", "method": "POST", "path": "/orders", "headers": headers}


async def reads_everything(scope: Message, receive: Any, send: Any) -> None:
    """Like a route (or the Idempotency-Key middleware): reads the whole body, then answers."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    payload = json.dumps({"read": size}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


async def turns_errors_into_400(scope: Message, receive: Any, send: Any) -> None:
    """Like FastAPI: an error while reading the body becomes "There was an error parsing the body"."""
    try:
        await reads_everything(scope, receive, send)
    except Exception:
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b'{"detail": "There was an error parsing the body"}'})


async def test_a_chunked_body_over_the_limit_is_refused_while_it_arrives_and_not_read_further() -> None:
    client = Client(total=None)  # endless: only the limit can stop it
    await BodySizeLimit(reads_everything, LIMIT)(scope(), client.receive, client.send)
    assert client.status == 413
    assert client.body["error"]["code"] == "payload_too_large"
    assert str(LIMIT) in client.body["error"]["message"]
    assert client.sent <= LIMIT + len(CHUNK)  # stopped at the limit


async def test_an_app_that_answers_the_interrupted_read_itself_still_answers_413() -> None:
    client = Client(total=10 * LIMIT)
    await BodySizeLimit(turns_errors_into_400, LIMIT)(scope(), client.receive, client.send)
    assert [m["type"] for m in client.answer] == ["http.response.start", "http.response.body"]
    assert client.status == 413 and client.body["error"]["code"] == "payload_too_large"


async def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read() -> None:
    client = Client(total=LIMIT + 1)
    await BodySizeLimit(reads_everything, LIMIT)(scope(content_length=LIMIT + 1), client.receive, client.send)
    assert client.status == 413 and client.pulls == 0


async def test_a_body_at_the_limit_passes_whole() -> None:
    for content_length in (LIMIT, None):
        client = Client(total=LIMIT)
        await BodySizeLimit(reads_everything, LIMIT)(scope(content_length), client.receive, client.send)
        assert client.status == 200 and client.body == {"read": LIMIT}
