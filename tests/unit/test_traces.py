"""Where an event's journey comes from (issue 13: "so that one order's whole journey shares one id"):
a request's `X-Correlation-Id` or `traceparent`, else a new one; a handled event's, for what it causes."""

from __future__ import annotations

import json
import logging

from shared.catalog import DisplayFulfillmentStatus, OrderFulfillmentStatusChanged
from shared.events import TRACEPARENT, CloudEvent, handling_trace, new_event, request_trace, traced
from shared.observability import JsonFormatter

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def status_changed() -> CloudEvent:
    data = OrderFulfillmentStatusChanged(order_id="o-1", fulfillment_status=DisplayFulfillmentStatus.FULFILLED)
    return new_event("orders", "order.fulfillment_status_changed", "o-1", data)


def test_a_request_takes_the_callers_correlation_id_and_trace() -> None:
    trace = request_trace(CALLER, "order-journey-1")
    assert (trace.correlation_id, trace.causation_id) == ("order-journey-1", None)
    assert trace.traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and trace.traceparent != CALLER


def test_without_a_correlation_id_the_journey_is_named_after_the_trace() -> None:
    assert request_trace(CALLER, None).correlation_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    fresh = request_trace(None, None)
    assert TRACEPARENT.fullmatch(fresh.traceparent) and fresh.correlation_id == fresh.traceparent[3:35]


def test_an_unusable_correlation_id_or_traceparent_is_not_taken() -> None:
    for bad in ("has spaces", "x" * 129, "<script>", "a\nb"):
        assert request_trace(None, bad).correlation_id != bad
    assert "0" * 32 not in request_trace("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None).traceparent


def test_what_a_handled_event_causes_continues_its_journey_and_names_it_as_the_cause() -> None:
    with traced(request_trace(CALLER, "journey-7")):
        paid = status_changed()
    assert (paid.correlationid, paid.causationid, paid.source) == ("journey-7", None, "urn:fulfillment-platform:orders")
    with traced(handling_trace(paid)):
        caused = status_changed()
    assert (caused.correlationid, caused.causationid, caused.traceparent) == ("journey-7", paid.id, paid.traceparent)


def test_an_event_from_before_correlation_ids_starts_a_journey_at_itself() -> None:
    earlier = CloudEvent(source="orders", type="order.paid", subject="o-1", data={})
    assert handling_trace(earlier).correlation_id == earlier.id
    alone = status_changed()
    assert alone.correlationid == alone.id and alone.causationid is None
    assert TRACEPARENT.fullmatch(alone.traceparent or "")


def test_a_log_line_names_the_service_and_the_journey() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "handled %s", ("order.paid",), None)
    record.topic, record.offset = "orders.events.v1", 7
    with traced(request_trace(None, "journey-9")):
        line = json.loads(JsonFormatter("orders").format(record))
    assert line["service"] == "orders" and line["message"] == "handled order.paid"
    assert (line["topic"], line["offset"], line["correlation_id"]) == ("orders.events.v1", 7, "journey-9")
