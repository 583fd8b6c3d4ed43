"""Offsets are committed only for handled messages, gathered into one commit per interval
(shared/offsets.py), against the embedded broker: fewer round trips, same guarantee."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo.errors import ConnectionFailure

from deploy.embedded_kafka import EmbeddedKafka
from shared.catalog import DisplayFulfillmentStatus, OrderFulfillmentStatusChanged
from shared.events import CloudEvent, new_event
from shared.messaging import EventSubscriptions, build_broker
from shared.observability import ServiceMetrics
from shared.settings import ServiceSettings
from shared.topics import ORDERS_EVENTS
from tests.conftest import eventually

TP = TopicPartition(ORDERS_EVENTS.name, 0)
GROUP = "offset-commits"


@pytest.fixture
def kafka() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(port=0) as broker:
        yield broker


async def produce(kafka: EmbeddedKafka, count: int) -> list[str]:
    """`count` events on partition 0, in order; their ids."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        ids = []
        for _ in range(count):
            data = OrderFulfillmentStatusChanged(order_id="o-1", fulfillment_status=DisplayFulfillmentStatus.FULFILLED)
            event = new_event("orders", "order.fulfillment_status_changed", "o-1", data)
            await producer.send_and_wait(TP.topic, event.to_bytes(), key=b"o-1", partition=TP.partition)
            ids.append(event.id)
        return ids
    finally:
        await producer.stop()


async def committed(kafka: EmbeddedKafka) -> int:
    """The group's committed offset on partition 0 as the broker holds it (0 when none)."""
    reader = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=GROUP, enable_auto_commit=False)
    await reader.start()
    try:
        return await reader.committed(TP) or 0
    finally:
        await reader.stop()


async def committed_is(kafka: EmbeddedKafka, offset: int) -> bool:
    return await committed(kafka) == offset


@asynccontextmanager
async def service_consumer(kafka: EmbeddedKafka, handle: Any, commit_interval_ms: int) -> AsyncIterator[KafkaBroker]:
    settings = ServiceSettings(
        service_name=GROUP,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        kafka_session_timeout_ms=6000,
        kafka_heartbeat_interval_ms=500,
        kafka_commit_interval_ms=commit_interval_ms,
        handler_backoff_seconds=0.0,
    )
    registry = CollectorRegistry()
    broker = build_broker(settings, registry)
    subscriptions = EventSubscriptions()

    @subscriptions.on("order.fulfillment_status_changed")
    async def record(event: CloudEvent, _: OrderFulfillmentStatusChanged) -> None:
        await handle(event)

    subscriptions.attach(broker, settings, ServiceMetrics(registry))
    await broker.start()
    try:
        yield broker
    finally:
        await subscriptions.flush_commits()
        await broker.stop()


@pytest.mark.asyncio
async def test_handled_offsets_are_committed_together_not_one_round_trip_each(
    kafka: EmbeddedKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[Any] = []
    real_commit = AIOKafkaConsumer.commit

    async def counted(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        commits.append(offsets)
        await real_commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", counted)
    handled: list[str] = []

    async def handle(event: CloudEvent) -> None:
        handled.append(event.id)

    sent = await produce(kafka, 40)
    async with service_consumer(kafka, handle, commit_interval_ms=200):
        await eventually(lambda: handled == sent)
        # Within the interval after the last one, without another message to carry it:
        await eventually(lambda: any(c and c.get(TP) == 40 for c in commits))
        assert await committed(kafka) == 40
    assert 1 <= len(commits) < 40 / 4, f"{len(commits)} commits for 40 messages"


@pytest.mark.asyncio
async def test_a_message_whose_handling_fails_is_never_committed_nor_anything_after_it(
    kafka: EmbeddedKafka,
) -> None:
    """A store outage on the third message: the first two are committed, the third is read
    again until it goes through, and nothing past it is committed meanwhile."""
    handled: list[str] = []
    attempts: dict[str, int] = {}
    outage = {"on": True}
    sent = await produce(kafka, 5)

    async def handle(event: CloudEvent) -> None:
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if event.id == sent[2] and outage["on"]:
            raise ConnectionFailure("store unreachable")
        handled.append(event.id)

    async with service_consumer(kafka, handle, commit_interval_ms=50):
        await eventually(lambda: attempts.get(sent[2], 0) >= 3)  # redelivered, again and again
        assert handled == sent[:2]
        await eventually(lambda: committed_is(kafka, 2))
        assert await committed(kafka) == 2  # never past the message that failed

        outage["on"] = False
        await eventually(lambda: handled == sent)
        await eventually(lambda: committed_is(kafka, 5))


@pytest.mark.asyncio
async def test_a_graceful_stop_commits_what_was_handled_so_a_restart_does_not_redo_it(
    kafka: EmbeddedKafka,
) -> None:
    handled: list[str] = []

    async def handle(event: CloudEvent) -> None:
        handled.append(event.id)

    sent = await produce(kafka, 3)
    async with service_consumer(kafka, handle, commit_interval_ms=60_000):  # no timed commit in the test
        await eventually(lambda: handled == sent)
    assert await committed(kafka) == 3


@pytest.mark.asyncio
async def test_a_commit_the_group_refuses_is_tried_again_so_a_quiet_partition_does_not_lag(
    kafka: EmbeddedKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit refused mid-rebalance used to be dropped: with nothing more arriving on the
    partition, its committed offset stayed behind for good (a lag that never clears)."""
    from aiokafka.errors import CommitFailedError

    refusals = {"left": 1}
    real_commit = AIOKafkaConsumer.commit

    async def refuse_once(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        if refusals["left"]:
            refusals["left"] -= 1
            raise CommitFailedError("rebalancing")
        await real_commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", refuse_once)
    handled: list[str] = []

    async def handle(event: CloudEvent) -> None:
        handled.append(event.id)

    sent = await produce(kafka, 3)
    async with service_consumer(kafka, handle, commit_interval_ms=100):
        await eventually(lambda: handled == sent)
        await eventually(lambda: committed_is(kafka, 3))  # no further message needed
        assert refusals["left"] == 0
