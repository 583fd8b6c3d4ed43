"""The consumer side of the delivery rules (shared/messaging.py), one handler at a time on
FastStream's in-memory test broker: retries, dead-lettering, and redelivery of what is not
the message's fault."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry
from pymongo.errors import AutoReconnect

from shared.catalog import (
    Customer,
    DisplayFulfillmentStatus,
    FinancialStatus,
    OrderFulfillmentStatusChanged,
    OrderPostPurchaseCompleted,
    OrderSnapshot,
)
from shared.events import CloudEvent, new_event
from shared.messaging import EventSubscriptions
from shared.observability import ServiceMetrics
from shared.rules import RuleViolation
from shared.settings import ServiceSettings

SETTINGS = ServiceSettings(service_name="unit", handler_attempts=3, handler_backoff_seconds=0.0)


def an_event() -> CloudEvent:
    data = OrderFulfillmentStatusChanged(order_id="o-1", fulfillment_status=DisplayFulfillmentStatus.FULFILLED)
    return new_event("orders", "order.fulfillment_status_changed", "o-1", data)


def wire(handler: Any) -> tuple[KafkaBroker, list[KafkaMessage], ServiceMetrics]:
    broker = KafkaBroker()
    subscriptions = EventSubscriptions()
    subscriptions.on("order.fulfillment_status_changed")(handler)
    metrics = ServiceMetrics(CollectorRegistry())
    subscriptions.attach(broker, SETTINGS, metrics)
    dead: list[KafkaMessage] = []

    @broker.subscriber("orders.events.v1.dlq", group_id="dlq-reader")
    async def dead_letters(message: KafkaMessage) -> None:
        dead.append(message)

    return broker, dead, metrics


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_its_attempts() -> None:
    calls: list[str] = []

    async def handler(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        calls.append(event.id)
        raise ValueError("no such line item")

    broker, dead, metrics = wire(handler)
    async with TestKafkaBroker(broker) as test_broker:
        event = an_event()
        await test_broker.publish(event.to_bytes(), topic="orders.events.v1", key=b"o-1")
    assert calls == [event.id] * 3
    assert len(dead) == 1
    headers = dead[0].headers
    assert headers["x-dlq-reason"] == "handler_failed"
    assert "ValueError: no such line item" in headers["x-dlq-error"]
    assert headers["x-dlq-original-topic"] == "orders.events.v1"
    assert dead[0].body == event.to_bytes()
    assert metrics.dead_lettered.labels("orders.events.v1", "handler_failed")._value.get() == 1


async def test_a_refusal_by_a_business_rule_is_dead_lettered_without_retrying() -> None:
    calls: list[str] = []

    async def handler(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        calls.append(event.id)
        raise RuleViolation("the fulfillment order is closed")

    broker, dead, _ = wire(handler)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(an_event().to_bytes(), topic="orders.events.v1", key=b"o-1")
    assert len(calls) == 1
    assert [m.headers["x-dlq-reason"] for m in dead] == ["rule_violation"]
    assert "the fulfillment order is closed" in dead[0].headers["x-dlq-error"]


async def test_a_handler_that_recovers_on_retry_is_not_dead_lettered() -> None:
    calls: list[str] = []

    async def handler(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        calls.append(event.id)
        if len(calls) < 2:
            raise ValueError("flaky")

    broker, dead, _ = wire(handler)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(an_event().to_bytes(), topic="orders.events.v1", key=b"o-1")
    assert len(calls) == 2
    assert dead == []


async def test_an_unreachable_store_is_not_the_messages_fault_so_it_is_not_dead_lettered() -> None:
    async def handler(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        raise AutoReconnect("store away")

    broker, dead, _ = wire(handler)
    async with TestKafkaBroker(broker) as test_broker:
        with pytest.raises(AutoReconnect):
            await test_broker.publish(an_event().to_bytes(), topic="orders.events.v1", key=b"o-1")
    assert dead == []


async def test_a_malformed_message_is_dead_lettered_without_calling_the_handler() -> None:
    calls: list[CloudEvent] = []

    async def handler(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        calls.append(event)

    broker, dead, _ = wire(handler)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"[1, 2", topic="orders.events.v1", key=b"o-1")
    assert calls == []
    assert [m.headers["x-dlq-reason"] for m in dead] == ["malformed"]


async def test_event_types_the_service_does_not_handle_are_ignored() -> None:
    calls: list[CloudEvent] = []

    async def handler(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        calls.append(event)

    broker, dead, _ = wire(handler)
    order = OrderSnapshot(
        id="o-1", customer=Customer(email="a@example.com", name="A"), currency="SEK",
        financial_status=FinancialStatus.PAID,
        line_items=[], created_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip
    other = new_event("orders", "order.post_purchase_completed", "o-1", OrderPostPurchaseCompleted(order=order))
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(other.to_bytes(), topic="orders.events.v1", key=b"o-1")
    assert calls == []
    assert dead == []
