"""Look at dead letters, and send them back once what made them fail is fixed.

    python -m deploy.dlq list orders.events.v1 [--group fulfillment]
    python -m deploy.dlq redrive orders.events.v1 --group fulfillment [--dry-run]

`list` prints every dead letter of a topic with the consumer group that gave up on it and why.
`redrive` publishes a group's dead letters again, as they came (same key, same value), to the
topic they came from; consumers that had already applied the event skip it by its id, the group
that failed gets another go. Progress is kept in the consumer group `dlq-redrive.<group>`, so a
dead letter is sent back once, however often the command runs.

It reaches the cluster as the services do, from the same variables: KAFKA_BOOTSTRAP_SERVERS (or
`--bootstrap`), KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM / _USERNAME / _PASSWORD and
KAFKA_SSL_CAFILE (on Kubernetes, those of the `dlq-tool` KafkaUser).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.kafka_connection import client_options
from shared.messaging import CLOUDEVENTS_CONTENT_TYPE
from shared.settings import KafkaSettings, load_settings
from shared.topics import all_topic_partitions


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord[bytes, bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {key: value.decode(errors="replace") for key, value in self.record.headers}

    @property
    def truncated(self) -> bool:
        """Kept only as a summary (it was too large for the dead-letter topic)."""
        return "x-dlq-truncated-from-bytes" in self.headers

    @property
    def group(self) -> str:
        return self.headers.get("x-dlq-consumer-group", "")

    @property
    def event_type(self) -> str:
        """The type of the event dead-lettered (older dead letters said it in a `ce_type` header)."""
        h = self.headers
        return h.get("x-dlq-event-type") or h.get("ce_type") or "?"

    def describe(self) -> str:
        h = self.headers
        return (
            f"{self.record.partition}:{self.record.offset} group={self.group} reason={h.get('x-dlq-reason')} "
            f"type={self.event_type} from={h.get('x-dlq-original-topic')}@{h.get('x-dlq-original-offset')}: "
            f"{h.get('x-dlq-error', '')[:200]}"
        )


async def read_dead_letters(
    kafka: KafkaSettings, topic: str, group_id: str | None = None
) -> tuple[list[DeadLetter], dict[TopicPartition, int]]:
    """Every dead letter of `topic` not yet consumed by `group_id` (all of them without one),
    and the offsets read up to."""
    dlq = f"{topic}.dlq"
    consumer = AIOKafkaConsumer(
        **client_options(kafka), group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(dlq, p) for p in range(all_topic_partitions()[dlq])]
        consumer.assign(partitions)
        if group_id is None:
            await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in partitions])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=500)).values():
                letters.extend(DeadLetter(r) for r in records if r.offset < end[TopicPartition(r.topic, r.partition)])
        return letters, end
    finally:
        await consumer.stop()


async def redrive(kafka: KafkaSettings, topic: str, group: str, dry_run: bool = False) -> int:
    """Send `group`'s dead letters of `topic` back to it; returns how many were sent."""
    redrive_group = f"dlq-redrive.{group}"
    read, offsets = await read_dead_letters(kafka, topic, redrive_group)
    letters = [letter for letter in read if letter.group == group and not letter.truncated]
    skipped = sum(1 for letter in read if letter.group == group and letter.truncated)
    if skipped:
        print(f"{skipped} dead letter(s) were too large to keep whole and cannot be redriven (see `list`)")
    if dry_run:
        for letter in letters:
            print("would redrive", letter.describe())
        return len(letters)
    producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for letter in letters:
            headers = redriven_headers(letter)
            headers.append(
                ("x-redriven-from", f"{topic}.dlq:{letter.record.partition}:{letter.record.offset}".encode())
            )
            await producer.send_and_wait(topic, letter.record.value, key=letter.record.key, headers=headers)
    finally:
        await producer.stop()
    await _commit(kafka, redrive_group, offsets)
    return len(letters)


def redriven_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The headers a dead letter goes back with: the original's, its content type included, without
    the dead-letter ones. A `ce_*` header (older dead letters had `ce_type`) is left behind: beside a
    structured-mode value it would make CloudEvents readers take the message for binary mode. An
    empty content type (older dead letters) is given back as structured mode when the value is a
    CloudEvent."""
    headers = [
        (k, v) for k, v in letter.record.headers if not k.startswith("x-dlq-") and not k.lower().startswith("ce_")
    ]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), b"")
    if not content_type and _is_cloudevent(letter.record.value):
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        headers.append(("content-type", CLOUDEVENTS_CONTENT_TYPE.encode()))
    return headers


def _is_cloudevent(value: bytes | None) -> bool:
    try:
        parsed = json.loads(value or b"")
    except ValueError:
        return False
    return isinstance(parsed, dict) and "specversion" in parsed


async def _commit(kafka: KafkaSettings, group_id: str, offsets: dict[TopicPartition, int]) -> None:
    """Remember, for the redrive group, what has been sent back (so it is not sent twice)."""
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "redrive"])
    parser.add_argument("topic", help="the topic whose dead letters to look at, e.g. orders.events.v1")
    parser.add_argument("--group", help="only the dead letters of this consumer group (required for redrive)")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--bootstrap", help="the brokers (default: KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092)")
    args = parser.parse_args()
    kafka = load_settings(KafkaSettings)
    if args.bootstrap:
        kafka = kafka.model_copy(update={"kafka_bootstrap_servers": args.bootstrap})
    if args.command == "list":
        letters, _ = asyncio.run(read_dead_letters(kafka, args.topic))
        for letter in letters:
            if not args.group or letter.group == args.group:
                print(letter.describe())
    else:
        if not args.group:
            parser.error("redrive needs --group: the consumer group that should get another go")
        sent = asyncio.run(redrive(kafka, args.topic, args.group, args.dry_run))
        print(f"{'would redrive' if args.dry_run else 'redrove'} {sent} dead letter(s) to {args.topic}")


if __name__ == "__main__":
    main()
