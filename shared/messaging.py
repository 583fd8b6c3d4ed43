"""Kafka, decided once: how the broker is built, how events go out and how they come in.

- Producer: idempotent, acks=all, the message key is the event's subject (aggregate id).
- Consumer: one consumer group per service; the offset is committed only after the handler
  finished (FastStream's Kafka default commits first, which can lose messages).
- A message that cannot be processed goes to `<topic>.dlq` with the error in its headers
  and the consumer carries on. A failure of our own infrastructure (store or broker
  unreachable) is not the message's fault: it is not dead-lettered but redelivered.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import time
import types
import typing
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy
from prometheus_client import CollectorRegistry
from pymongo.errors import ConnectionFailure

from shared.catalog import Contract
from shared.events import CloudEvent, EnvelopeError, acting_as, handling_trace, parse_message, spec_for, traced
from shared.kafka_connection import build_security
from shared.observability import ServiceMetrics, Telemetry, continuing, handling, span_traceparent
from shared.offsets import OffsetCommits, OffsetResetGuard
from shared.rules import RuleViolation
from shared.settings import ServiceSettings
from shared.store import ConcurrencyConflict
from shared.topics import Topic

log = logging.getLogger(__name__)

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
"""Structured mode (the Kafka protocol binding of CloudEvents): the whole event is the value and
this is the only CloudEvents header. No `ce_*` header may sit beside it: a reader that detects
the mode (the SDKs' `from_kafka_event`) takes any `ce_*` header to mean binary mode."""

# What a real cluster accepts by default (message.max.bytes) is 1 MB; aiokafka's producer refuses
# records over 1 MiB. A dead letter whose value would not fit is sent as a truncated record instead,
# so a huge poison message can never stall its partition.
MAX_DEAD_LETTER_BYTES = 900_000
SUMMARY_CONTENT_TYPE = "application/json"  # a dead letter kept as a summary is no CloudEvent
TRUNCATED_HEAD_BYTES = 16_384

# Failures of our own infrastructure: retried by redelivery, never dead-lettered.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    ConcurrencyConflict,
    KafkaError,
    OSError,
    TimeoutError,
)

Handler = Callable[[CloudEvent, Any], Awaitable[None]]
"""`async def on_paid(event: CloudEvent, paid: OrderPaid) -> None`: the event and its data as the
catalog model of its type (for a handler of several types, the union of their models)."""
H = TypeVar("H", bound=Handler)


def build_broker(
    settings: ServiceSettings, registry: CollectorRegistry, telemetry: Telemetry | None = None
) -> KafkaBroker:
    middlewares: list[Any] = [KafkaPrometheusMiddleware(registry=registry, app_name=settings.service_name)]
    if telemetry is not None:
        middlewares.append(telemetry.broker_middleware())
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        enable_idempotence=True,
        acks="all",
        # Topics are provisioned from the catalog (shared/topics.py), never on first use.
        allow_auto_create_topics=False,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # Handlers take the message as it came (see `_the_message_itself`); no dependency injection,
        # which resolved the message parameter in a worker thread for every message.
        apply_types=False,
        security=build_security(settings),
        middlewares=middlewares,
        logger=logging.getLogger(f"{settings.service_name}.broker"),
        # FastStream's "Received" / "Processed" per message say less than our one "handled" line
        # (shared.observability.handling): debug lines. Its errors stay errors.
        log_level=logging.DEBUG,
    )


async def publish_event(broker: KafkaBroker, event: CloudEvent, metrics: ServiceMetrics) -> None:
    """Publish one event, keyed by its subject. One the broker can never take (over its size
    limit) is dead-lettered as a summary with the reason, so that it cannot hold back the
    aggregate's later events forever; the API's bounds keep this from happening."""
    topic = event.spec.topic.name
    value = event.to_bytes()
    headers = {"content-type": CLOUDEVENTS_CONTENT_TYPE}
    try:
        # FastStream's `correlation_id` header says the event's journey too (it makes one otherwise).
        with continuing(event.traceparent):
            await broker.publish(
                value, topic=topic, key=event.subject.encode(), headers=headers, correlation_id=event.correlationid
            )
    except MessageSizeTooLargeError as exc:
        summary, _ = dead_letter_value(value)
        reason_headers = {
            "content-type": SUMMARY_CONTENT_TYPE,
            "x-dlq-event-type": event.type,
            "x-dlq-reason": "too_large",
            "x-dlq-error": f"{event.type} {event.id} is {len(value)} bytes: {exc}"[:2000],
            "x-dlq-original-topic": topic,
            "x-dlq-truncated-from-bytes": str(len(value)),
        }
        await broker.publish(
            summary,
            topic=f"{topic}.dlq",
            key=event.subject.encode(),
            headers=reason_headers,
            correlation_id=event.correlationid,
        )
        metrics.dead_lettered.labels(topic, "too_large").inc()
        log.error("event %s %s of %s is %d bytes, over the broker's limit: dead-lettered as a summary",
                  event.type, event.id, event.subject, len(value))  # fmt: skip


class EventSubscriptions:
    """A service's event handlers by type, attached to the broker with retries and a DLQ.

    Event types a service does not handle are acknowledged and ignored: producers may add
    types to a topic without breaking its consumers.
    """

    def __init__(self) -> None:
        self.typed: dict[str, Handler] = {}
        self.topics: dict[str, Topic] = {}
        self.commits: OffsetCommits | None = None

    async def flush_commits(self) -> None:
        """Before the consumer stops: commit what was handled, so a restart does not redo it."""
        if self.commits is not None:
            await self.commits.flush()

    def on(self, *event_types: str) -> Callable[[H], H]:
        """Register a handler for these event types; its second parameter, where annotated, must be
        the catalog model of the types (their union for several): checked here, once."""

        def register(handler: H) -> H:
            specs = [spec_for(event_type) for event_type in event_types]
            _check_payload_annotation(handler, {spec.model for spec in specs})
            for spec in specs:
                self.typed[spec.event_type] = handler
                self.topics[spec.topic.name] = spec.topic
            return handler

        return register

    @property
    def handlers(self) -> dict[str, Callable[[CloudEvent], Awaitable[None]]]:
        """Each handler as a function of the event alone (its data validated on the way): for
        callers that hold a parsed event, such as tests driving a service without Kafka."""
        return {event_type: partial(_with_payload, handler) for event_type, handler in self.typed.items()}

    def attach(self, broker: KafkaBroker, settings: ServiceSettings, metrics: ServiceMetrics) -> None:
        """One consumer for all the service's topics: one group member, one rebalance."""
        if not self.topics:
            return
        consumer = _Consumer(self, broker, settings, metrics)
        self.commits = commits = OffsetCommits(settings.kafka_commit_interval_ms / 1000)
        guard = OffsetResetGuard(settings.service_name, metrics, commits)

        async def consume(message: KafkaMessage) -> None:
            await guard.check(message)
            try:
                await consumer.consume(message)
            except BaseException:
                await message.nack()  # read it again (seek back to it); nothing after it is committed
                raise
            guard.handled(message)
            await commits.handled(message)

        broker.subscriber(
            *self.topics,
            group_id=settings.service_name,
            # Past deleted messages, carry on from the oldest one left; the guard says what was skipped.
            auto_offset_reset="earliest",
            listener=guard,
            # Offsets are committed by `commits`, only for handled messages (see shared/offsets.py).
            ack_policy=AckPolicy.MANUAL,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            decoder=_the_message_itself,
            title=f"{settings.service_name} consumer",
            description="CloudEvents handled: " + ", ".join(sorted(self.typed)),
        )(consume)


async def _the_message_itself(message: KafkaMessage) -> KafkaMessage:
    """What the consumer's handler receives: the Kafka message whole (its body is decoded by
    `parse_event`). FastStream would otherwise inject it through FastDepends, which resolves such a
    parameter in a worker thread: a thread hop per message, 10-20% of a busy service's CPU."""
    return message


class _Consumer:
    def __init__(
        self,
        subscriptions: EventSubscriptions,
        broker: KafkaBroker,
        settings: ServiceSettings,
        metrics: ServiceMetrics,
    ) -> None:
        self.subscriptions = subscriptions
        self.broker = broker
        self.settings = settings
        self.metrics = metrics

    async def consume(self, message: KafkaMessage) -> None:
        raw: bytes = message.body
        record: Any = message.raw_message
        try:
            event, payload = parse_message(raw)
        except EnvelopeError as exc:
            with handling(record):
                await self.dead_letter(message, "malformed", str(exc))
            return
        # What this event causes is done for whoever caused it and continues its journey; what is
        # logged meanwhile says which message and journey it is about.
        with handling(record, event), acting_as(event.actor), traced(handling_trace(event, span_traceparent())):
            arrived_on: str = record.topic
            if event.spec.topic.name != arrived_on:
                # An event type belongs to one topic; on another it is forged or misrouted.
                error = f"{event.type} belongs on {event.spec.topic.name}, not on {arrived_on}"
                await self.dead_letter(message, "wrong_topic", error, event)
                return
            handler = self.subscriptions.typed.get(event.type)
            if handler is None:
                return
            started = time.perf_counter()
            if await self.handle_with_retries(message, handler, event, payload) and log.isEnabledFor(logging.INFO):
                ms = round((time.perf_counter() - started) * 1000, 1)
                log.info("handled %s in %.1f ms", event.type, ms, extra={"duration_ms": ms})

    async def handle_with_retries(
        self, message: KafkaMessage, handler: Handler, event: CloudEvent, payload: Contract
    ) -> bool:
        """Whether the handler did it (else the message was dead-lettered)."""
        attempts = self.settings.handler_attempts
        for attempt in range(1, attempts + 1):
            try:
                await handler(event, payload)
                return True
            except RuleViolation as exc:
                # Refused by a business rule: retrying the same message gets the same answer.
                await self.dead_letter(message, "rule_violation", f"{type(exc).__name__}: {exc}", event)
                return False
            except TRANSIENT_ERRORS:
                # Not the message's fault: back off, then let Kafka redeliver it.
                log.warning("transient failure handling %s %s; will be redelivered", event.type, event.id)
                await asyncio.sleep(self.settings.handler_backoff_seconds * 10)
                raise
            except Exception as exc:
                if attempt == attempts:
                    await self.dead_letter(message, "handler_failed", f"{type(exc).__name__}: {exc}", event)
                    return False
                self.metrics.retried.labels(event.type).inc()
                log.warning("handling %s %s failed (attempt %d/%d): %s", event.type, event.id, attempt, attempts, exc)
                await asyncio.sleep(self.settings.handler_backoff_seconds * 2 ** (attempt - 1))
        return False

    async def dead_letter(
        self, message: KafkaMessage, reason: str, error: str, event: CloudEvent | None = None
    ) -> None:
        record: Any = message.raw_message
        headers = {
            "x-dlq-reason": reason,
            "x-dlq-error": error[:2000],
            "x-dlq-original-topic": record.topic,
            "x-dlq-original-partition": str(record.partition),
            "x-dlq-original-offset": str(record.offset),
            "x-dlq-consumer-group": self.settings.service_name,
        }
        # The copy keeps the original's content type (a CloudEvent stays readable as one); the event
        # type goes in an x-dlq header, never a `ce_*` one, which would make it binary mode.
        if message.content_type:
            headers["content-type"] = message.content_type
        if event is not None:
            headers["x-dlq-event-type"] = event.type
        value, truncated = dead_letter_value(message.body)
        if truncated:
            headers["x-dlq-truncated-from-bytes"] = str(len(message.body))
            headers["content-type"] = SUMMARY_CONTENT_TYPE
        await self.broker.publish(
            value, topic=f"{record.topic}.dlq", key=record.key, headers=headers, correlation_id=message.correlation_id
        )
        self.metrics.dead_lettered.labels(record.topic, reason).inc()
        log.error(
            "dead-lettered message from %s partition %s offset %s: %s: %s",
            record.topic, record.partition, record.offset, reason, error[:300],
        )  # fmt: skip


async def _with_payload(handler: Handler, event: CloudEvent) -> None:
    await handler(event, event.payload())


def _check_payload_annotation(handler: Handler, models: set[type[Contract]]) -> None:
    """A handler annotated with another model than its event types carry fails at start, not on
    the first message. An annotation that cannot be resolved here is left unchecked."""
    try:
        parameters = list(inspect.signature(handler, eval_str=True).parameters.values())
    except (NameError, TypeError):
        return
    if len(parameters) != 2:
        raise TypeError(f"{handler.__qualname__} must take (event, payload), not {len(parameters)} parameters")
    annotation = parameters[1].annotation
    if annotation is inspect.Parameter.empty or annotation is Any:
        return
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    declared = set(typing.get_args(annotation)) if union else {annotation}
    if declared != models:
        expected = " | ".join(sorted(model.__name__ for model in models))
        raise TypeError(f"{handler.__qualname__} receives {expected}, not {annotation}")


def dead_letter_value(body: bytes) -> tuple[bytes, bool]:
    """The value a dead letter carries: the message as it came, or, when that would not fit on
    the dead-letter topic, a JSON record of what it was (size, digest, its first bytes)."""
    if len(body) <= MAX_DEAD_LETTER_BYTES:
        return body, False
    summary = {
        "truncated": True,
        "original_bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "head": body[:TRUNCATED_HEAD_BYTES].decode("utf-8", "replace"),
    }
    return json.dumps(summary).encode(), True
