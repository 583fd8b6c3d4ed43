"""An offset reset past unread messages is an error, logged and counted: never silent.

When the offset a consumer group is to read next is no longer in the log (retention or
DeleteRecords removed it before the group got there), the broker answers OFFSET_OUT_OF_RANGE
and aiokafka, with `auto_offset_reset="earliest"`, moves on to the oldest message left, saying
so only at INFO: every message in between is skipped unread. `auto_offset_reset="none"` would
raise instead, but FastStream's consume loop only logs that and fetches the same offset again,
every 5 s, forever. So the consumer keeps "earliest" (it carries on and loses as little as it
can) and this guard notices the jump: it knows the offset it expects next on each partition
(the group's committed offset after an assignment, then the one after the last message
handled), and a message beyond it whose predecessors are gone from the log (the log now starts
after the expected offset) means they were skipped. A gap the log still holds is only
transaction markers. The skip is noticed at the first message read after it: a partition whose
unread messages were all deleted and that receives nothing more reports it with its next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka.annotations import KafkaMessage

from shared.observability import ServiceMetrics

log = logging.getLogger(__name__)


class OffsetResetGuard(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Watches one consumer group's offsets; also its rebalance listener."""

    def __init__(self, group: str, metrics: ServiceMetrics, commits: OffsetCommits | None = None) -> None:
        self.group = group
        self.metrics = metrics
        self.commits = commits
        self._expected: dict[TopicPartition, int] = {}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.commits is not None:
            await self.commits.flush()  # what was handled is committed before the partitions go
            self.commits.forget(revoked)
        for tp in revoked:
            self._expected.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Another member may have moved a partition on meanwhile: start again from the commit.
        for tp in assigned:
            self._expected.pop(tp, None)

    async def check(self, message: KafkaMessage) -> None:
        """Before handling a message: did the group jump over messages it never read?"""
        consumer, record = message.consumer, message.raw_message
        if not isinstance(consumer, AIOKafkaConsumer) or isinstance(record, tuple):
            return  # FastStream's in-memory test broker, or a batch
        tp = TopicPartition(record.topic, record.partition)
        expected = self._expected.get(tp)
        if expected == record.offset:
            return
        if expected is None:
            expected = await consumer.committed(tp)
            if expected is None or expected >= record.offset:
                return  # a new group starts where the log starts; re-reading is harmless
        elif expected > record.offset:
            return
        log_start = (await consumer.beginning_offsets([tp]))[tp]
        if log_start <= expected:
            return  # the log still has the offsets in between: transaction markers
        self.metrics.offset_resets.labels(tp.topic, str(tp.partition)).inc()
        log.error(
            "consumer group %s skipped unread messages: %s partition %d was reset from offset %d "
            "to %d because the broker deleted everything before offset %d; offsets %d to %d were "
            "never handled (check the topic's retention)",
            self.group, tp.topic, tp.partition, expected, record.offset, log_start, expected, record.offset - 1,
        )  # fmt: skip

    def handled(self, message: KafkaMessage) -> None:
        """After a message was handled: the next one expected on its partition."""
        record = message.raw_message
        if not isinstance(record, tuple):
            self._expected[TopicPartition(record.topic, record.partition)] = record.offset + 1


class OffsetCommits:
    """Commits the offsets of handled messages, gathered: at most one commit per `interval`
    seconds (0: one per message), and before the partitions go to another member.

    Only what a handler finished is ever committed (the offset after it, per partition), so
    "committed only after handling" holds; what a crash leaves handled but not yet committed
    is redelivered, and the handlers' inboxes make that harmless. Committing each message
    instead costs a round trip to the group coordinator per message, awaited before the next
    one is read (about a tenth of a busy service's CPU on the embedded stack).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._consumer: AIOKafkaConsumer | None = None
        self._handled: dict[TopicPartition, int] = {}
        self._pending: asyncio.Task[None] | None = None

    async def handled(self, message: KafkaMessage) -> None:
        """A message was handled: commit it now or within the interval."""
        consumer, record = message.consumer, message.raw_message
        if not isinstance(consumer, AIOKafkaConsumer) or isinstance(record, tuple):
            await message.ack()  # FastStream's in-memory test broker, or a batch
            return
        self._consumer = consumer
        self._handled[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if self.interval <= 0:
            await self.flush()
        else:
            self._flush_soon()

    def _flush_soon(self) -> None:
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(max(self.interval, 0.1))
        self._pending = None
        await self.flush()

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions gone to another member: what is left for them here is theirs to redo."""
        for tp in partitions:
            self._handled.pop(tp, None)

    async def flush(self) -> None:
        """Commit what was handled and is not committed yet, on the partitions this member still
        has. A commit the group refuses (it is rebalancing, say) is tried again after the
        interval: a quiet partition's committed offset must not lag for ever (lag alerts, and a
        restart would redo it all)."""
        if not self._handled or self._consumer is None:
            return
        assigned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in self._handled.items() if tp in assigned}
        self._handled = {}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (KafkaError, RuntimeError) as exc:  # aiokafka raises IllegalStateError etc.
            for tp, offset in offsets.items():  # unless a later message of it was handled meanwhile
                self._handled[tp] = max(offset, self._handled.get(tp, 0))
            log.warning("offsets of %d partition(s) not committed (%s); trying again",
                        len(offsets), type(exc).__name__)  # fmt: skip
            self._flush_soon()
