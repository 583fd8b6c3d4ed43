"""The dead-letter tool: ops can list what a consumer gave up on and send it back, once."""

from __future__ import annotations

import uuid

import pytest

from deploy.dlq import read_dead_letters, redrive
from deploy.local_stack import LocalStack
from shared.settings import KafkaSettings
from tests.conftest import eventually
from tests.kafka_tools import TopicReader, produce_raw

pytestmark = pytest.mark.e2e
TOPIC = "inventory.events.v1"


def cluster(stack: LocalStack) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap_servers=stack.kafka_bootstrap)


async def test_dead_letters_are_listed_and_sent_back_once(stack: LocalStack) -> None:
    key = f"poison-{uuid.uuid4()}".encode()
    async with TopicReader(stack.kafka_bootstrap, TOPIC) as kafka:
        await produce_raw(stack.kafka_bootstrap, TOPIC, b"{half a message", key=key)

        async def both_consumers_gave_up() -> bool:
            letters, _ = await read_dead_letters(cluster(stack), TOPIC)
            return sorted(letter.group for letter in letters if letter.record.key == key) == ["fulfillment", "orders"]

        # Both consumers of the topic gave up on it, each saying why.
        await eventually(both_consumers_gave_up)
        letters, _ = await read_dead_letters(cluster(stack), TOPIC)
        mine = next(letter for letter in letters if letter.record.key == key and letter.group == "orders")
        assert mine.headers["x-dlq-reason"] == "malformed"
        assert "malformed" in mine.describe()

        assert await redrive(cluster(stack), TOPIC, "orders", dry_run=True) >= 1

        def redriven() -> list[str]:
            return [
                dict(r.headers)["x-redriven-from"].decode()
                for r in kafka.records
                if r.key == key and "x-redriven-from" in dict(r.headers)
            ]

        assert redriven() == [], "a dry run sends nothing"
        assert await redrive(cluster(stack), TOPIC, "orders") >= 1
        await eventually(lambda: len(redriven()) == 1)
        resent = next(r for r in kafka.records if r.key == key and "x-redriven-from" in dict(r.headers))
        assert resent.value == b"{half a message"

        # Running it again sends back only what was dead-lettered since, never the same letter twice.
        await redrive(cluster(stack), TOPIC, "orders")
        assert len(set(redriven())) == len(redriven())
