"""One order's journey shares one correlation id, in its events and in the four services' logs
(issue 13: "no correlation: the `correlation_id` header differs on 17 of 17 messages of one
order's flow; no trace context"; logs were "JSON lines with time, level, logger and message only;
FastStream's topic, group and message id are dropped, so a line reads 'Received'; no service
field")."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from shared.events import TRACEPARENT
from tests.conftest import SERVICES, eventually
from tests.e2e.test_fulfillment_flows import Shop, physical
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

TOPICS = ("orders.events.v1", "inventory.events.v1", "fulfillment.events.v1", "notifications.events.v1")
MESSAGE_FIELDS = {"service", "level", "message", "topic", "partition", "offset", "event_id", "event_type", "subject"}


def log_lines(stack: LocalStack, service: str) -> list[dict[str, Any]]:
    """The service's log as the stack wrote it: one JSON object per line."""
    lines = []
    for text in Path(stack.log_dir / f"{service}.log").read_text(errors="replace").splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def journey_in_logs(stack: LocalStack, correlation_id: str) -> list[dict[str, Any]]:
    return [line for s in SERVICES for line in log_lines(stack, s) if line.get("correlation_id") == correlation_id]


async def test_one_order_is_followed_through_the_four_services_logs_by_its_correlation_id(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    shop = Shop(stack, http)
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 5)
    email = f"buyer-{shop.tag}@example.com"
    journey = f"journey-{uuid.uuid4()}"
    with_id = {"X-Correlation-Id": journey}

    async with TopicReader(stack.kafka_bootstrap, *TOPICS) as kafka:
        body = {"customer": {"email": email, "name": "Buyer"}, "currency": "SEK", "financial_status": "pending",
                "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122",
                                     "country_code": "SE"},
                "line_items": [physical(mug, 1)]}  # fmt: skip
        created = await http.post(f"{stack.url('orders')}/orders", json=body, headers=with_id)
        assert created.status_code == 201, created.text
        assert created.headers["x-correlation-id"] == journey
        order_id = created.json()["id"]
        paid = await http.post(f"{stack.url('orders')}/orders/{order_id}/pay", headers=with_id)
        assert paid.status_code == 200, paid.text
        (fo,) = await shop.settle(order_id, 1)
        shipment = {"tracking": {"numbers": ["1Z1"], "company": "UPS"}, "notify_customer": True}
        url = f"{stack.url('fulfillment')}/fulfillment-orders/{fo['id']}/fulfillments"
        fulfilled = await http.post(url, json=shipment, headers=with_id)
        assert fulfilled.status_code == 201, fulfilled.text

        def events_of_the_order() -> list[dict[str, Any]]:
            return kafka.events(order_id)

        await eventually(lambda: "notification.sent" in [e["type"] for e in events_of_the_order()], timeout=60)
        await shop.display_status(order_id, "FULFILLED")

        # Every event of the order, whoever emitted it, belongs to the journey; each one a consumer
        # emitted names the event that caused it; the Kafka header says the same id.
        journey_types = {"order.created", "order.paid", "fulfillment_order.created", "inventory.reserved",
                         "fulfillment.created", "inventory.committed", "notification.sent",
                         "order.fulfillment_status_changed"}  # fmt: skip
        # The email and the display status may be seen before inventory's commit is read back.
        await eventually(lambda: {e["type"] for e in events_of_the_order()} >= journey_types, timeout=30)
        events = events_of_the_order()
        assert {e["correlationid"] for e in events} == {journey}, [(e["type"], e["correlationid"]) for e in events]
        ids = {e["id"] for e in events}
        for event in events:
            assert TRACEPARENT.fullmatch(event["traceparent"]), event
            if event["type"] in ("fulfillment_order.created", "inventory.reserved", "notification.sent"):
                assert event["causationid"] in ids, event
        headers = [dict(r.headers) for r in kafka.records if r.key == order_id.encode()]
        assert {h["correlation_id"].decode() for h in headers} == {journey}

    # The logs tell the same journey, step by step, in the four services.
    def lines() -> list[dict[str, Any]]:
        return journey_in_logs(stack, journey)

    def step(service: str, test: Callable[[dict[str, Any]], bool]) -> Callable[[], bool]:
        return lambda: any(line["service"] == service and test(line) for line in lines())

    def handled(event_type: str) -> Callable[[dict[str, Any]], bool]:
        return lambda line: line.get("event_type") == event_type and line.get("subject") == order_id

    def request(method: str, path: str, status: int) -> Callable[[dict[str, Any]], bool]:
        return lambda line: (line.get("method"), line.get("path"), line.get("status")) == (method, path, status)

    steps = {
        "created": step("orders", request("POST", "/orders", 201)),
        "paid": step("orders", request("POST", "/orders/{order_id}/pay", 200)),
        "routed": step("fulfillment", handled("order.paid")),
        "reserved": step("inventory", handled("fulfillment_order.created")),
        "reservation seen": step("fulfillment", handled("inventory.reserved")),
        "fulfilled": step(
            "fulfillment", request("POST", "/fulfillment-orders/{fulfillment_order_id}/fulfillments", 201)
        ),
        "email asked for": step("notifications", handled("fulfillment.created")),
        "emailed": step("notifications", lambda line: f"order {order_id}) sent" in line["message"]),
        "email on the timeline": step("orders", handled("notification.sent")),
    }
    await eventually(lambda: all(found() for found in steps.values()), timeout=30)
    for line in lines():
        assert {"service", "level", "message"} <= set(line), line
        if "event_id" in line:
            assert set(line) >= MESSAGE_FIELDS, line
        if "method" in line:
            assert isinstance(line["duration_ms"], float | int), line

    # Nothing a buyer or merchant would not want in a log: no email address, no bearer token.
    token = http.headers["authorization"].removeprefix("Bearer ")
    for service in SERVICES:
        text = Path(stack.log_dir / f"{service}.log").read_text(errors="replace")
        assert email not in text, f"{service} logged the buyer's email address"
        assert token not in text, f"{service} logged a bearer token"


async def test_a_request_without_a_correlation_id_starts_a_journey_its_events_carry_on(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    shop = Shop(stack, http)
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 5)
    async with TopicReader(stack.kafka_bootstrap, *TOPICS) as kafka:
        # A caller's trace context is continued: the journey is named after its trace id.
        trace_id = uuid.uuid4().hex
        traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
        reply = await http.post(
            f"{stack.url('orders')}/orders", json=_paid_order(mug), headers={"traceparent": traceparent}
        )
        assert reply.status_code == 201, reply.text
        order_id, journey = reply.json()["id"], reply.headers["x-correlation-id"]
        assert journey == trace_id

        def types() -> set[str]:
            return {e["type"] for e in kafka.events(order_id)}

        # Each topic is read on its own: the fulfillment topic may be behind the inventory one.
        wanted = {"order.created", "order.paid", "fulfillment_order.created", "inventory.reserved"}
        await eventually(lambda: types() >= wanted, timeout=30)
        events = kafka.events(order_id)
        assert {e["correlationid"] for e in events} == {journey}
        assert all(e["traceparent"].split("-")[1] == trace_id for e in events)
        by_type = {e["type"]: e for e in events}
        assert "causationid" not in by_type["order.created"], "a request causes it, not an event"
        assert by_type["fulfillment_order.created"]["causationid"] == by_type["order.paid"]["id"]
        assert by_type["inventory.reserved"]["causationid"] == by_type["fulfillment_order.created"]["id"]

        # Without one, a request starts a journey of its own, named in the response.
        reply = await http.post(f"{stack.url('orders')}/orders", json=_paid_order(mug))
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-correlation-id"])
        assert reply.headers["x-correlation-id"] != journey


def _paid_order(sku: str) -> dict[str, Any]:
    return {"customer": {"email": "buyer@example.com", "name": "Buyer"}, "currency": "SEK",
            "financial_status": "paid", "line_items": [physical(sku, 1)],
            "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122",
                                 "country_code": "SE"}}  # fmt: skip
