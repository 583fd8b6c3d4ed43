"""A consumer group reset past messages it never read says so: an ERROR log naming the topic,
partition and offsets, `consumer_offset_resets_total` goes up, and the consumer carries on
from the oldest message left. Against the embedded broker, whose `delete_records` removes the
head of a partition as a real cluster's retention does."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from deploy.embedded_kafka import EmbeddedKafka
from shared.catalog import DisplayFulfillmentStatus, OrderFulfillmentStatusChanged
from shared.events import CloudEvent, new_event
from shared.messaging import EventSubscriptions, build_broker
from shared.observability import ServiceMetrics
from shared.settings import ServiceSettings
from shared.topics import ORDERS_EVENTS
from tests.conftest import eventually

TP = TopicPartition(ORDERS_EVENTS.name, 0)
RESET_LOG = "skipped unread messages"


@pytest.fixture
def kafka() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(port=0) as broker:
        yield broker


def an_event() -> CloudEvent:
    data = OrderFulfillmentStatusChanged(order_id="o-1", fulfillment_status=DisplayFulfillmentStatus.FULFILLED)
    return new_event("orders", "order.fulfillment_status_changed", "o-1", data)


async def produce(kafka: EmbeddedKafka, count: int) -> list[tuple[int, str]]:
    """`count` events on partition 0; their (offset, event id)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = []
        for _ in range(count):
            event = an_event()
            meta = await producer.send_and_wait(TP.topic, event.to_bytes(), key=b"o-1", partition=TP.partition)
            sent.append((meta.offset, event.id))
        return sent
    finally:
        await producer.stop()


@asynccontextmanager
async def service_consumer(
    kafka: EmbeddedKafka, handled: list[str]
) -> AsyncIterator[tuple[KafkaBroker, ServiceMetrics]]:
    """A service's consumer as the services build it (shared/messaging.py), in this process."""
    settings = ServiceSettings(
        service_name="offset-guard",
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        kafka_session_timeout_ms=6000,
        kafka_heartbeat_interval_ms=500,
        handler_backoff_seconds=0.0,
    )
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    broker = build_broker(settings, registry)
    subscriptions = EventSubscriptions()

    @subscriptions.on("order.fulfillment_status_changed")
    async def record(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        handled.append(event.id)

    subscriptions.attach(broker, settings, metrics)
    await broker.start()
    try:
        yield broker, metrics
    finally:
        await subscriptions.flush_commits()  # as a service stopping does (shared/runtime.py)
        await broker.stop()


def resets(metrics: ServiceMetrics) -> float:
    value: float = metrics.offset_resets.labels(TP.topic, str(TP.partition))._value.get()
    return value


@pytest.mark.asyncio
async def test_a_reset_past_unread_messages_while_the_consumer_was_down_is_logged_and_counted(
    kafka: EmbeddedKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: with the consumer down, the broker deleted messages it had never read
    (the embedded broker used to, past ~5 MB), and the consumer reset past them in silence."""
    caplog.set_level(logging.INFO)
    handled: list[str] = []
    [(_, first)] = await produce(kafka, 1)
    async with service_consumer(kafka, handled):
        await eventually(lambda: handled == [first])  # committed: the group is to read offset 1 next

    unread = await produce(kafka, 4)  # offsets 1 to 4, while the consumer is down
    kafka.delete_records(TP.topic, TP.partition, 3)  # offsets 1 and 2 go unread

    handled.clear()
    async with service_consumer(kafka, handled) as (_, metrics):
        await eventually(lambda: handled == [event_id for _, event_id in unread[2:]])
        errors = [r for r in caplog.records if r.levelno == logging.ERROR and RESET_LOG in r.getMessage()]
        assert len(errors) == 1
        assert (
            f"{TP.topic} partition 0 was reset from offset 1 to 3 because the broker deleted everything "
            "before offset 3; offsets 1 to 2 were never handled" in errors[0].getMessage()
        )
        assert resets(metrics) == 1

        # It carries on, and what follows in order is no reset.
        [(_, later)] = await produce(kafka, 1)
        await eventually(lambda: handled[-1:] == [later])
        assert resets(metrics) == 1


@pytest.mark.asyncio
async def test_a_reset_past_unread_messages_of_a_running_consumer_is_logged_and_counted(
    kafka: EmbeddedKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """A consumer that falls behind retention (its next offset deleted while it runs) is reset
    by aiokafka, which says so only at INFO; the guard makes it an error and a count."""
    caplog.set_level(logging.INFO)
    handled: list[str] = []
    async with service_consumer(kafka, handled) as (broker, metrics):
        [(_, first)] = await produce(kafka, 1)
        await eventually(lambda: handled == [first])
        consumer = broker.subscribers[0].consumer  # type: ignore[attr-defined]
        consumer.pause(TP)  # the consumer falls behind: it fetches nothing more from partition 0

        unread = await produce(kafka, 4)  # offsets 1 to 4
        kafka.delete_records(TP.topic, TP.partition, 3)
        consumer.resume(TP)

        await eventually(lambda: handled[1:] == [event_id for _, event_id in unread[2:]])
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and RESET_LOG in r.getMessage()]
        assert len(errors) == 1 and "was reset from offset 1 to 3" in errors[0]
        assert resets(metrics) == 1
