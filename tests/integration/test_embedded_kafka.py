"""The embedded broker speaks enough Kafka for aiokafka and FastStream: produce, consume, groups."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker

from deploy.embedded_kafka import EmbeddedKafka
from shared.topics import FULFILLMENT_EVENTS, INVENTORY_EVENTS, NOTIFICATIONS_EVENTS, ORDERS_EVENTS

# Short sessions: the mock broker makes a live group's rebalance wait session timeout - 1 s.
SESSION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS = 6000, 500


@pytest.fixture
def kafka() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(port=0) as broker:
        yield broker


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def group_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )


@pytest.mark.asyncio
async def test_keyed_messages_round_trip(kafka: EmbeddedKafka) -> None:
    sent = [(f"order-{i % 3}".encode(), f"event-{i}".encode()) for i in range(9)]
    await produce(kafka.bootstrap_servers, INVENTORY_EVENTS.name, sent)

    consumer = group_consumer(kafka.bootstrap_servers, INVENTORY_EVENTS.name, "round-trip")
    await consumer.start()
    received: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(received) < len(sent) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                received.extend(records)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert sorted((r.key, r.value) for r in received) == sorted(sent)
    partitions_per_key: dict[bytes | None, set[int]] = {}
    for record in received:
        partitions_per_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(parts) == 1 for parts in partitions_per_key.values())
    # Per key, the order of production is kept.
    for key in partitions_per_key:
        assert [r.value for r in received if r.key == key] == [v for k, v in sent if k == key]


@pytest.mark.asyncio
async def test_two_consumers_share_a_group(kafka: EmbeddedKafka) -> None:
    topic, partitions = ORDERS_EVENTS.name, ORDERS_EVENTS.partitions
    consumers = [group_consumer(kafka.bootstrap_servers, topic, "two-members") for _ in "ab"]
    try:
        await asyncio.gather(*(c.start() for c in consumers))

        def balanced() -> bool:
            assignments = [c.assignment() for c in consumers]
            every = [tp for a in assignments for tp in a]
            return all(assignments) and sorted(every) == [TopicPartition(topic, p) for p in range(partitions)]

        await wait_until(balanced, "both consumers to share all partitions")

        sent = [(f"order-{i}".encode(), f"event-{i}".encode()) for i in range(60)]
        await produce(kafka.bootstrap_servers, topic, sent)

        received: list[Counter[bytes]] = [Counter(), Counter()]

        async def poll_once() -> None:
            batches = await asyncio.gather(*(c.getmany(timeout_ms=300) for c in consumers))
            for counter, batch in zip(received, batches, strict=True):
                counter.update(r.value for records in batch.values() for r in records)

        deadline = asyncio.get_running_loop().time() + 30
        while sum(map(sum, (c.values() for c in received))) < len(sent):
            assert asyncio.get_running_loop().time() < deadline, "not every message arrived"
            await poll_once()
        await poll_once()  # anything redelivered would show up here
        assert balanced(), "the group rebalanced while consuming"
    finally:
        await asyncio.gather(*(c.stop() for c in consumers))

    total = received[0] + received[1]
    assert set(total) == {value for _, value in sent}
    assert all(count == 1 for count in total.values())
    assert all(received), "each consumer should get a share"


@pytest.mark.asyncio
async def test_faststream_subscriber_in_a_group(kafka: EmbeddedKafka) -> None:
    broker = KafkaBroker(kafka.bootstrap_servers)
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @broker.subscriber(
        NOTIFICATIONS_EVENTS.name,
        group_id="faststream-test",
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    async def handle(body: str) -> None:
        if not got.done():
            got.set_result(body)

    await broker.start()
    try:
        await broker.publish("order placed", topic=NOTIFICATIONS_EVENTS.name, key=b"order-1")
        assert await asyncio.wait_for(got, timeout=30) == "order placed"
    finally:
        await broker.stop()


# The mock cluster's own default keeps 5 MiB (or 100,000 batches) per partition.
MOCK_DEFAULT_PARTITION_BYTES = 5 * 1024 * 1024


@pytest.mark.asyncio
@pytest.mark.parametrize("topic", [FULFILLMENT_EVENTS.name, FULFILLMENT_EVENTS.dlq])
async def test_the_local_broker_does_not_delete_unread_messages(kafka: EmbeddedKafka, topic: str) -> None:
    """The local broker deletes unread messages: it kept ~5 MB per partition, so large messages on
    one partition pushed out a `fulfillment.created` nobody had read yet (and a DLQ lost its
    history the same way). More than 5 MB on one partition, then a group reads from the start:
    every message is still there."""
    size = 900_000  # under aiokafka's 1 MB request limit
    count = MOCK_DEFAULT_PARTITION_BYTES // size + 3  # 8 messages, 7.2 MB, one key, one partition
    sent = [(b"order-1", bytes([i]) * size) for i in range(count)]
    await produce(kafka.bootstrap_servers, topic, sent)

    consumer = group_consumer(kafka.bootstrap_servers, topic, "late-reader")
    await consumer.start()
    received: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not (received and received[-1].offset == count - 1):  # read up to the last one
            assert asyncio.get_running_loop().time() < deadline, "the last message never arrived"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                received.extend(records)
    finally:
        await consumer.stop()

    assert [(r.offset, r.value[:1]) for r in received] == [(i, bytes([i])) for i in range(count)]
