"""The CloudEvents 1.0 envelope (structured JSON mode) every Kafka message value uses.

The envelope is the public contract: `id` is the de-duplication key consumers rely on and
`subject` is the aggregate id, also used as the Kafka message key so that one aggregate's
events stay in order on one partition.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from shared import clock
from shared.catalog import CATALOG, Contract, EventSpec
from shared.topics import FULFILLMENT_RESPONSES, Topic

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
    data: dict[str, Any]
    # CloudEvents extension attribute: who caused this event (a token's `sub`); left out when
    # the platform did it on its own (a sweep, a timer).
    actor: str | None = Field(
        None,
        max_length=256,
        description="who caused this event: the subject of the caller's token",
        exclude_if=lambda v: v is None,
    )

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


def new_event(service: str, event_type: str, subject: str, data: BaseModel) -> CloudEvent:
    """Wrap a catalog payload in an envelope, checking it is the model its type carries; `service`
    is the emitting service's name (the envelope's `source` is its URI)."""
    spec = spec_for(event_type)
    if not isinstance(data, spec.model):
        raise EnvelopeError(f"{event_type} carries {spec.model.__name__}, not {type(data).__name__}")
    return CloudEvent(
        source=source_of(service),
        type=event_type,
        subject=subject,
        dataschema=dataschema_of(event_type),
        data=data.model_dump(mode="json"),
        actor=current_actor(),
    )


def envelope_schema(topic: Topic) -> Any:
    """The messages of a topic for its AsyncAPI document: one envelope model per event type,
    with `type` fixed and `data` its catalog model, as a union."""
    models: list[type[CloudEvent]] = []
    for event_type, spec in CATALOG.items():
        if spec.topic == topic:
            name = "".join(part.capitalize() for part in re.split(r"[._]", event_type)) + "Event"
            fields: dict[str, Any] = {"type": (Literal[event_type], ...), "data": (spec.model, ...)}
            if topic == FULFILLMENT_RESPONSES:
                proof = "a JWT: scope fulfillment_service:<id>; event_id, event_type, event_subject, data_sha256"
                fields[ANSWER_PROOF] = (str, Field(description=proof))
            models.append(create_model(name, __base__=CloudEvent, **fields))
    return Union[tuple(models)]  # noqa: UP007 - a union built at run time


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
