"""OpenTelemetry is on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and off otherwise (issue 13: "with
OpenTelemetry (FastStream's and FastAPI's instrumentation) exporting over OTLP when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, off otherwise"). Off costs nothing: no import of the SDK,
no provider, no exporter thread. No collector is needed: nothing here waits on an export."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shared import observability
from shared.observability import configure_telemetry, continuing, span_traceparent

OFF = """
import json, sys, threading
from shared.observability import configure_telemetry, span_traceparent
before = threading.active_count()
import services.orders.app  # the composition root, as a service process imports it
telemetry = configure_telemetry("orders")
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter",
                                                         "opentelemetry.instrumentation", "faststream.opentelemetry")))
print(json.dumps({"telemetry": repr(telemetry), "loaded": loaded, "threads": threading.active_count() - before,
                  "span": span_traceparent()}))
"""


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_without_an_endpoint_nothing_is_configured_imported_or_started() -> None:
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    ran = subprocess.run([sys.executable, "-c", OFF], capture_output=True, text=True, env=env, timeout=120, check=True)
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen == {"telemetry": "None", "loaded": [], "threads": 0, "span": None}


def test_with_an_endpoint_traces_and_metrics_are_exported_from_faststream_and_fastapi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"  # nothing listens: nothing may wait on it
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    telemetry = configure_telemetry("orders")
    assert telemetry is not None
    try:
        from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        assert isinstance(telemetry.tracer_provider, TracerProvider)
        assert isinstance(telemetry.meter_provider, MeterProvider)
        assert telemetry.tracer_provider.resource.attributes["service.name"] == "orders"
        [processor] = telemetry.tracer_provider._active_span_processor._span_processors
        exporter = processor._batch_processor._exporter  # type: ignore[attr-defined]
        assert exporter._endpoint == f"{endpoint}/v1/traces"
        assert isinstance(telemetry.broker_middleware(), KafkaTelemetryMiddleware)

        app = FastAPI()
        telemetry.instrument(app)
        assert getattr(app, "_is_instrumented_by_opentelemetry", False)

        # Events made inside a span say so; publishing continues the trace the event carries.
        context = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, False, TraceFlags(1))
        with trace.use_span(NonRecordingSpan(context)):
            assert span_traceparent() == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        assert span_traceparent() is None
        with continuing("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
            assert trace.get_current_span().get_span_context().trace_id == context.trace_id
    finally:
        started = time.monotonic()
        telemetry.shutdown(timeout_seconds=1)
        assert time.monotonic() - started < 5
    assert not observability._tracing, "off again after shutdown"
