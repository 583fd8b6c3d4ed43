"""With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the services export OpenTelemetry traces over OTLP/HTTP,
and one request's trace goes on through Kafka into the services that handle what it caused
(issue 13: "OpenTelemetry (FastStream's and FastAPI's instrumentation) exporting over OTLP")."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from deploy.local_stack import LocalStack, free_port
from tests.conftest import bearer, eventually, running_stack
from tests.e2e.test_following_an_order import _paid_order
from tests.e2e.test_walking_skeleton import stocked_sku
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e


class Collector:
    """A stand-in OTLP/HTTP collector: keeps (service, trace id, span name) of every span sent."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        self.port = free_port()
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    for resource in request.resource_spans:
                        names = [a.value.string_value for a in resource.resource.attributes if a.key == "service.name"]
                        for scope in resource.scope_spans:
                            collector.spans.extend((names[0], span.trace_id.hex(), span.name) for span in scope.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Receive)

    def __enter__(self) -> Collector:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Collector]]:
    with Collector() as collector:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}", "OTEL_BSP_SCHEDULE_DELAY": "200"}
        folder: Path = tmp_path_factory.mktemp("traced")
        with running_stack(folder, ("orders", "inventory", "fulfillment"), **env) as stack:
            yield stack, collector


async def test_a_requests_trace_goes_on_through_kafka_into_the_services_that_handle_it(
    traced_stack: tuple[LocalStack, Collector],
) -> None:
    stack, collector = traced_stack
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack)) as http:
        # Routing knows the stock before the order comes: else the order waits for it, and its
        # reservation is made by the stock's arrival, in the trace of the request that stocked it.
        sku = await stocked_sku(stack, http, on_hand=3)
        async with TopicReader(stack.kafka_bootstrap, "orders.events.v1", "inventory.events.v1") as kafka:
            trace_id = uuid.uuid4().hex
            caller = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
            reply = await http.post(f"{stack.url('orders')}/orders", json=_paid_order(sku), headers=caller)
            assert reply.status_code == 201, reply.text
            order_id = reply.json()["id"]
            await eventually(lambda: "inventory.reserved" in kafka.types(order_id), timeout=30)
            # The events carry the trace of the spans that made them: the request's trace.
            traces = {(e["type"], e["traceparent"].split("-")[1]) for e in kafka.events(order_id)}
            assert {trace for _, trace in traces} == {trace_id}, traces

    def services_in_the_trace() -> set[str]:
        return {service for service, trace, _ in collector.spans if trace == trace_id}

    # The request's span in orders, the consumers' spans in fulfillment and inventory: one trace.
    await eventually(lambda: services_in_the_trace() >= {"orders", "fulfillment", "inventory"}, timeout=30)
