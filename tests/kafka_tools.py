"""Plain aiokafka clients for tests: read what services put on a topic, or inject raw messages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.topics import all_topic_partitions


class TopicReader:
    """Reads every partition of some topics from the beginning, in the background, no group."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicReader:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        counts = all_topic_partitions()
        partitions = [TopicPartition(topic, p) for topic in self.topics for p in range(counts[topic])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(records)

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()

    def events(self, subject: str | None = None, topic: str | None = None) -> list[dict[str, Any]]:
        """CloudEvents read so far (optionally of one subject / topic), in partition order."""
        found = []
        for record in self.records:
            if topic and record.topic != topic:
                continue
            try:
                event = json.loads(record.value or b"")
            except ValueError:
                continue
            if isinstance(event, dict) and (subject is None or event.get("subject") == subject):
                found.append(event)
        return found

    def types(self, subject: str, topic: str | None = None) -> list[str]:
        return [e["type"] for e in self.events(subject, topic)]


async def produce_raw(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
