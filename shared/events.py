"""The CloudEvents 1.0 envelope (structured JSON mode) every Kafka message value uses.

The envelope is the public contract: `id` is the de-duplication key consumers rely on and
`subject` is the aggregate id, also used as the Kafka message key so that one aggregate's
events stay in order on one partition.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, WithJsonSchema

from shared import clock
from shared.catalog import CATALOG, Contract, EventSpec

ANSWER_PROOF = "authtoken"
"""CloudEvents extension attribute of a fulfillment service's answer: a JWT signed with a key of
the JWKS, bound to this event (see shared/auth/answers.py, `sign_answer`)."""


PLATFORM_URN = "urn:fulfillment-platform"
"""The namespace of the platform's `source` and `dataschema` URIs: names, not addresses, so they
stay the same in every environment (no host, port or cluster in them)."""


def source_of(service: str) -> str:
    """The CloudEvents `source` of what `service` emits, e.g. `urn:fulfillment-platform:orders`: an
    absolute URI (as the spec recommends for `source`) naming the producing service, stable across
    deployments and replicas, so subscribers can filter and de-duplicate on (source, id)."""
    return f"{PLATFORM_URN}:{service}"


def service_of(source: str) -> str:
    """The producing service named by a `source` (the source itself when it is not one of ours)."""
    prefix = f"{PLATFORM_URN}:"
    return source[len(prefix) :] if source.startswith(prefix) else source


def dataschema_of(event_type: str) -> str:
    """The CloudEvents `dataschema` of a v1 event type, e.g.
    `urn:fulfillment-platform:schemas:v1:order.created`: the `$id` of the JSON Schema of its `data`,
    published as `docs/schemas/v1/<type>.json` (see the README, "Subscribing to the platform's
    events"). One per type and major version: v1 schemas only grow, so the URI never changes."""
    return f"{PLATFORM_URN}:schemas:v1:{event_type}"


class EnvelopeError(ValueError):
    """A message value that is not a CloudEvent this platform understands."""


_ACTOR: ContextVar[str | None] = ContextVar("actor", default=None)


def current_actor() -> str | None:
    """Who the events made now act for: the bearer token's subject during an HTTP call, the
    actor of the event being handled in a consumer, None for the platform's own work."""
    return _ACTOR.get()


@contextmanager
def acting_as(actor: str | None) -> Iterator[None]:
    """Events made inside carry `actor`: set once at the entrance, so rules stay pure."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


_BULK_JOB: ContextVar[str | None] = ContextVar("bulk_job", default=None)


@contextmanager
def for_bulk_job(job_id: str) -> Iterator[None]:
    """Events made inside name the bulk job doing the work (`bulk_job_id`, where their data has
    that field): set once where a job acts, so the rules need not carry it."""
    token = _BULK_JOB.set(job_id)
    try:
        yield
    finally:
        _BULK_JOB.reset(token)


TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
"""A W3C trace context `traceparent` of version 00 (the only one this platform writes)."""
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
"""What an incoming `X-Correlation-Id` may be: an id, not text (it goes into every log line)."""


@dataclass(frozen=True, slots=True)
class Trace:
    """Where the events made now belong: the journey they are part of (`correlation_id`, shared by
    everything one request set going), the event that caused them (`causation_id`; None for a
    request) and the W3C trace context (`traceparent`) of what made them."""

    correlation_id: str
    traceparent: str
    causation_id: str | None = None


_TRACE: ContextVar[Trace | None] = ContextVar("trace", default=None)


def current_trace() -> Trace | None:
    """The trace of what is being done now: set at the entrance (an HTTP request, a handled
    event), None for the platform's own work (a sweep), whose events start journeys of their own."""
    return _TRACE.get()


@contextmanager
def traced(trace: Trace | None) -> Iterator[None]:
    """Events made inside carry `trace`: set once at the entrance, like `acting_as`."""
    token = _TRACE.set(trace)
    try:
        yield
    finally:
        _TRACE.reset(token)


def new_traceparent(trace_id: str | None = None) -> str:
    """A traceparent of a new span (in a new trace unless `trace_id` is given)."""
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def request_trace(traceparent: str | None, correlation_id: str | None, span: str | None = None) -> Trace:
    """The trace an HTTP request starts: its `X-Correlation-Id` if it brings a usable one, else the
    trace id of its `traceparent`, else a new one; `span` is the traceparent of the request's own
    span when OpenTelemetry traces it (else one is made up in the caller's trace)."""
    incoming = traceparent if traceparent and TRACEPARENT.fullmatch(traceparent) else None
    trace_id = incoming[3:35] if incoming else uuid.uuid4().hex
    if not (correlation_id and CORRELATION_ID.fullmatch(correlation_id)):
        correlation_id = trace_id
    return Trace(correlation_id, span or new_traceparent(trace_id))


def handling_trace(event: CloudEvent, span: str | None = None) -> Trace:
    """The trace of handling `event`: what it causes continues its journey (an event from before
    correlation ids, or from outside, starts one at itself) and is caused by it; `span` is the
    traceparent of the consumer's span when OpenTelemetry traces it."""
    traceparent = span or event.traceparent
    if not traceparent or not TRACEPARENT.fullmatch(traceparent):
        traceparent = new_traceparent()
    return Trace(event.correlationid or event.id, traceparent, event.id)


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime = Field(default_factory=clock.now)
    subject: str = Field(min_length=1)
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(None, min_length=1, exclude_if=lambda v: v is None)
    data: Annotated[
        dict[str, JsonValue], WithJsonSchema({"additionalProperties": True, "title": "Data", "type": "object"})
    ]
    """The type's payload (a JSON object; `payload()` reads it as the catalog model of its type)."""
    # CloudEvents extension attribute: who caused this event (a token's `sub`); left out when
    # the platform did it on its own (a sweep, a timer).
    actor: str | None = Field(
        None,
        max_length=256,
        description="who caused this event: the subject of the caller's token",
        exclude_if=lambda v: v is None,
    )

    # CloudEvents distributed tracing extension: the trace context of what made this event.
    traceparent: str | None = Field(None, max_length=55, exclude_if=lambda v: v is None)
    # Extension attributes: the journey this event belongs to (one id from the request that set it
    # going, through every service) and the id of the event that caused it (none for a request).
    correlationid: str | None = Field(None, max_length=128, exclude_if=lambda v: v is None)
    causationid: str | None = Field(None, max_length=256, exclude_if=lambda v: v is None)

    @property
    def producer(self) -> str:
        """The service that emitted it (for people: `orders`, not its source URI)."""
        return service_of(self.source)

    @property
    def spec(self) -> EventSpec:
        return spec_for(self.type)

    def payload(self) -> Contract:
        """The data validated against the catalog model of this event's type."""
        model: type[Contract] = self.spec.model
        return model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def spec_for(event_type: str) -> EventSpec:
    try:
        return CATALOG[event_type]
    except KeyError:
        raise EnvelopeError(f"unknown event type {event_type!r}: not in the v1 catalog") from None


def new_event(service: str, event_type: str, subject: str, data: BaseModel, trace: Trace | None = None) -> CloudEvent:
    """Wrap a catalog payload in an envelope, checking it is the model its type carries; `service`
    is the emitting service's name (the envelope's `source` is its URI). The event carries the
    trace of what is being done (`current_trace`), or `trace` when its cause is kept elsewhere;
    with neither it starts a journey of its own."""
    spec = spec_for(event_type)
    if not isinstance(data, spec.model):
        raise EnvelopeError(f"{event_type} carries {spec.model.__name__}, not {type(data).__name__}")
    event_id = str(uuid.uuid4())
    trace = trace or _TRACE.get() or Trace(event_id, new_traceparent())
    bulk_job = _BULK_JOB.get()
    if bulk_job is not None and "bulk_job_id" in type(data).model_fields and getattr(data, "bulk_job_id", None) is None:
        data = data.model_copy(update={"bulk_job_id": bulk_job})
    return CloudEvent(
        id=event_id,
        source=source_of(service),
        type=event_type,
        subject=subject,
        dataschema=dataschema_of(event_type),
        data=data.model_dump(mode="json"),
        actor=current_actor(),
        traceparent=trace.traceparent,
        correlationid=trace.correlation_id,
        causationid=trace.causation_id,
    )


def parse_event(raw: bytes | str) -> CloudEvent:
    """Parse and validate one message value: envelope first, then the data of its type.

    Raises EnvelopeError with a message that names what is wrong, for the dead-letter record.
    """
    return parse_message(raw)[0]


def parse_message(raw: bytes | str) -> tuple[CloudEvent, Contract]:
    """`parse_event`, also giving the data as the catalog model of its type (validated once:
    this is what a handler receives)."""
    try:
        event = CloudEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise EnvelopeError(f"not a CloudEvents 1.0 envelope: {_describe(exc)}") from None
    try:
        payload = event.payload()
    except ValidationError as exc:
        raise EnvelopeError(f"{event.type} data is invalid: {_describe(exc)}") from None
    return event, payload


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors())
