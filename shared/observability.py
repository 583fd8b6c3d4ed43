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
import os
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypedDict

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


class Handling(TypedDict, total=False):
    """Which message is being handled (and which event, once read): on every log line meanwhile."""

    topic: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    subject: str


_HANDLING: ContextVar[Handling | None] = ContextVar("handling", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, service, level, logger, message, what is being handled
    (the message's coordinates, the journey's correlation id) and the record's own fields."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {  # any value: written with default=str
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
    fields: Handling = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    if event is not None:
        fields.update({"event_id": event.id, "event_type": event.type, "subject": event.subject})
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


OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_tracing = False  # set while OpenTelemetry exports: only then is there a span to read or continue


def span_traceparent() -> str | None:
    """The traceparent of the current OpenTelemetry span while traces are exported (None otherwise:
    then the platform's own trace ids say where events come from)."""
    if not _tracing:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def continuing(traceparent: str | None) -> AbstractContextManager[object]:
    """Publishing an event: while traces are exported, the publish span continues the trace of what
    made the event (the relay publishes it later, outside that request or handler)."""
    if not _tracing or not traceparent:
        return _NOTHING
    from opentelemetry import context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return _attached(context, TraceContextTextMapPropagator().extract({"traceparent": traceparent}))


_NOTHING = nullcontext()


@contextmanager
def _attached(context: Any, parent: Any) -> Iterator[None]:
    token = context.attach(parent)
    try:
        yield
    finally:
        context.detach(token)


class Telemetry:
    """OpenTelemetry, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: traces and metrics of FastStream
    (every message consumed and published) and FastAPI (every request), exported over OTLP/HTTP
    to that endpoint. The standard `OTEL_*` variables (headers, timeouts, sampler, resource
    attributes, export interval) apply. Its packages are imported only then."""

    def __init__(self, service: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({SERVICE_NAME: service})
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
        )

    def broker_middleware(self) -> Any:
        """FastStream's instrumentation, a middleware of the broker."""
        from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

        return KafkaTelemetryMiddleware(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def instrument(self, app: Any) -> None:
        """FastAPI's instrumentation of `app` (probes and scrapes left out)."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            excluded_urls=",".join(sorted(QUIET_PATHS)),
        )

    def shutdown(self, timeout_seconds: float = 5.0) -> None:
        """Export what is left (bounded), then stop the exporters' threads."""
        global _tracing
        _tracing = False
        self.tracer_provider.force_flush(int(timeout_seconds * 1000))
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown(timeout_millis=timeout_seconds * 1000)


def configure_telemetry(service: str) -> Telemetry | None:
    """OpenTelemetry for `service` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; otherwise None and
    nothing at all: no import, no provider, no exporter thread."""
    global _tracing
    endpoint = os.environ.get(OTLP_ENDPOINT, "").strip()
    if not endpoint:
        return None
    telemetry = Telemetry(service)
    _tracing = True
    log.info("OpenTelemetry traces and metrics are exported to %s", endpoint)
    return telemetry
