"""What a service tells the people running it: logs as one JSON object per line, HTTP access lines,
the Prometheus registry, and OpenTelemetry traces when an OTLP endpoint is configured.

A log line says which service wrote it and, while a message is handled, which message (topic,
partition, offset, event id, type and subject); every line written while a request or an event
is handled carries the journey's correlation id (shared.events.Trace), so one order can be
followed through the four services' logs. No line carries a token, an email address or body:
request lines name the route (`/downloads/{token}`), never the path as sent or its query.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events import CloudEvent, current_trace, request_trace, traced

log = logging.getLogger(__name__)
access_log = logging.getLogger("access")

FIELDS = ("topic", "partition", "offset", "group_id", "message_id", "event_id", "event_type", "subject",
          "method", "path", "status", "duration_ms")  # fmt: skip
"""What a log record may carry besides its message (as `extra=`), written when present."""
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probed every few seconds by Kubernetes and Prometheus: their access lines are debug lines."""

_HANDLING: ContextVar[dict[str, Any] | None] = ContextVar("handling", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, service, level, logger, message, what is being handled
    (the message's coordinates, the journey's correlation id) and the record's own fields."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "service": self.service,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        handling = _HANDLING.get()
        if handling is not None:
            entry.update(handling)
        fields = record.__dict__
        for name in FIELDS:
            value = fields.get(name)
            if value is not None and value != "":
                entry[name] = value
        trace = current_trace()
        if trace is not None:
            entry["correlation_id"] = trace.correlation_id
        elif "correlation_id" in fields:  # work done later for a journey (an email sent) says which
            entry["correlation_id"] = fields["correlation_id"]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access lines show the path as sent, query and all (a download link's token, say):
    # `RequestContext` writes the access lines instead.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger(service).setLevel(level.upper())


@contextmanager
def handling(record: Any, event: CloudEvent | None = None) -> Iterator[None]:
    """Log lines written inside say which message is being handled (and which event, once read)."""
    fields: dict[str, Any] = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    if event is not None:
        fields["event_id"], fields["event_type"], fields["subject"] = event.id, event.type, event.subject
    token = _HANDLING.set(fields)
    try:
        yield
    finally:
        _HANDLING.reset(token)


class RequestContext:
    """Every HTTP request: its trace (the caller's `X-Correlation-Id` or `traceparent`, else a new
    one) for the events it makes and the log lines it writes, the correlation id back in the
    `X-Correlation-Id` response header, and one access line (method, route, status, duration)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = correlation_id = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"x-correlation-id":
                correlation_id = value.decode("latin-1")
        trace = request_trace(traceparent, correlation_id, span_traceparent())
        echoed = (b"x-correlation-id", trace.correlation_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_correlation(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        with traced(trace):
            try:
                await self.app(scope, receive, send_with_correlation)
            finally:
                self._access_line(scope, status, time.perf_counter() - started)

    @staticmethod
    def _access_line(scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        path: str = getattr(route, "path", None) or "(no route)"
        level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
        if access_log.isEnabledFor(level):
            method, ms = scope["method"], round(seconds * 1000, 1)
            fields = {"method": method, "path": path, "status": status, "duration_ms": ms}
            access_log.log(level, "%s %s %d in %.1f ms", method, path, status, ms, extra=fields)


class ServiceMetrics:
    """Metrics of our own delivery machinery, beside FastStream's message metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.dead_lettered = Counter(
            "dead_lettered_messages",
            "Messages sent to a dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        )
        self.retried = Counter(
            "handler_retries", "Handler attempts that failed and were retried.", ["event_type"], registry=registry
        )
        self.outbox_published = Counter(
            "outbox_published_events", "Events relayed from the outbox to Kafka.", ["event_type"], registry=registry
        )
        self.offset_resets = Counter(
            "consumer_offset_resets",
            "Offset resets past unread messages (deleted by the broker before they were read), by partition.",
            ["topic", "partition"],
            registry=registry,
        )


def span_traceparent() -> str | None:
    """The traceparent of the current OpenTelemetry span, when traces are exported (None otherwise:
    then the platform's own trace ids say where events come from)."""
    return None
