"""The AsyncAPI 3.0 documents: each service's (served at `/asyncapi`) and the whole platform's
(served at `/asyncapi.yaml`, committed as docs/asyncapi.yaml), built from the catalog.

Built here rather than by FastStream: the consumers take the raw Kafka message (shared/messaging.py),
so FastStream could only say `{"type": "null"}` for what they receive; it has no way to describe
message keys, the third-party services' answers (nobody here publishes them), or one document over
four services. From the catalog every message gets the same schemas the platform validates with
(shared/schemas.py), a new catalog type appears by itself, and the platform document is the same
bytes wherever it is generated.

Every message: its envelope (CloudEvents 1.0, structured mode, `id` and `specversion` required) with
`data` the type's published schema, its Kafka key, its headers and an example. The data schemas
are in `components/schemas` under their model names; each type's envelope under the type's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, cast

import yaml
from faststream.specification.asyncapi.site import get_asyncapi_html
from pydantic import JsonValue
from pydantic.json_schema import models_json_schema

from shared.asyncapi_examples import example_event, example_headers, example_key, key_of
from shared.catalog import CATALOG, EventSpec
from shared.events import ANSWER_PROOF, CloudEvent, dataschema_of
from shared.messaging import CLOUDEVENTS_CONTENT_TYPE
from shared.schemas import Schema, data_schema, subschema, text_of
from shared.topics import FULFILLMENT_REQUESTS, FULFILLMENT_RESPONSES, TOPICS, Topic

if TYPE_CHECKING:
    from faststream.specification import Specification

AsyncAPIDocument = dict[str, JsonValue]
"""An AsyncAPI document, or a part of one (a channel, an operation, a message): a JSON object."""

ASYNCAPI = "3.0.0"
KAFKA_BINDING = "0.5.0"
CONTENT_TYPE = "application/cloudevents+json"
"""The documents' `defaultContentType`: structured-mode CloudEvents (the header adds `charset=UTF-8`)."""
PLATFORM_VERSION = "1.0.0"
ENVELOPE_REQUIRED = ("specversion", "id", "source", "type", "subject", "data")
"""CloudEvents' required attributes, and this platform's `subject` (the key) and `data`."""

PLATFORM_CONSUMES = tuple(topic for topic in TOPICS if topic is not FULFILLMENT_REQUESTS)
"""The topics the platform's services read (and so dead-letter on): all but the requests, which
are for third-party fulfillment services."""

DEAD_LETTER_REASONS = ("malformed", "wrong_topic", "rule_violation", "handler_failed", "too_large")


def types_on(topic: Topic) -> list[str]:
    return sorted(event_type for event_type, spec in CATALOG.items() if spec.topic == topic)


def platform_document(version: str = PLATFORM_VERSION) -> AsyncAPIDocument:
    """The whole platform as subscribers see it: every topic its services publish, the answers it
    reads from third-party fulfillment services, and the dead-letter topics."""
    sends = [topic for topic in TOPICS if topic is not FULFILLMENT_RESPONSES]
    description = (
        "Order fulfillment as four services (orders, inventory, fulfillment, notifications) over Kafka. "
        "Every message value is a CloudEvents 1.0 event in structured mode, keyed by its subject. "
        "Within v1 changes are additive only: ignore types and fields you do not know, de-duplicate by "
        "`id`. The JSON Schema of each type's data is published under its `dataschema` URN "
        "(docs/schemas/v1/<type>.json)."
    )
    receives = {FULFILLMENT_RESPONSES: types_on(FULFILLMENT_RESPONSES)}
    return _Builder().document("Fulfillment platform", version, description, sends, receives, PLATFORM_CONSUMES)


def service_document(service: str, description: str, version: str, handled: Iterable[str]) -> AsyncAPIDocument:
    """One service's document: the topics it owns (it sends every type on them), the types it
    handles by topic, and the dead-letter topics of what it reads."""
    receives: dict[Topic, list[str]] = {}
    for event_type in sorted(handled):
        receives.setdefault(CATALOG[event_type].topic, []).append(event_type)
    sends = [topic for topic in TOPICS if topic.owner == service]
    read = [topic for topic in TOPICS if topic in receives]
    return _Builder(group=service).document(f"{service} service", version, description, sends, receives, read)


def to_yaml(document: AsyncAPIDocument) -> str:
    text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return text


@cache
def platform_yaml() -> str:
    """The platform document as served and committed (docs/asyncapi.yaml)."""
    return to_yaml(platform_document())


class _Rendered:
    """What FastStream's AsyncAPI page takes from a specification: its title and its JSON."""

    def __init__(self, document: AsyncAPIDocument) -> None:
        self.document = document
        self.title = text_of(subschema(document["info"]), "title")

    def to_json(self) -> str:
        return json.dumps(self.document).replace("</", "<\\/")  # it is written into a <script>


def asyncapi_html(document: AsyncAPIDocument) -> str:
    """A page that renders the document (AsyncAPI's React component, as FastStream serves it)."""
    return get_asyncapi_html(cast("Specification", _Rendered(document)), try_it_out_path=None)


class _Builder:
    def __init__(self, group: str | None = None) -> None:
        self.group = group
        self.messages: dict[str, JsonValue] = {}
        self.schemas: dict[str, JsonValue] = {}

    def document(
        self,
        title: str,
        version: str,
        description: str,
        sends: list[Topic],
        receives: Mapping[Topic, list[str]],
        dead_letters: Iterable[Topic],
    ) -> AsyncAPIDocument:
        channels: dict[str, JsonValue] = {}
        operations: dict[str, JsonValue] = {}
        for topic in TOPICS:
            types = sorted(set(types_on(topic) if topic in sends else []) | set(receives.get(topic, [])))
            if not types:
                continue
            channels[topic.name] = self.channel(topic, types)
            if topic in sends:
                operations[f"send.{topic.name}"] = self.operation("send", topic, types_on(topic))
            if topic in receives:
                operations[f"receive.{topic.name}"] = self.operation("receive", topic, receives[topic])
        for topic in dead_letters:
            channels[topic.dlq] = self.dead_letter_channel(topic)
            operations[f"send.{topic.dlq}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{topic.dlq}"},
                "summary": f"What a consumer of {topic.name} gave up on, as it came, with the reason.",
                "messages": [{"$ref": f"#/channels/{topic.dlq}/messages/dead_letter"}],
            }
        return {
            "asyncapi": ASYNCAPI,
            "info": {"title": title, "version": version, "description": description},
            "defaultContentType": CONTENT_TYPE,
            "channels": channels,
            "operations": operations,
            "components": {
                "messages": dict(sorted(self.messages.items())),
                "schemas": self.component_schemas(),
                "correlationIds": {
                    "journey": {
                        "description": "One id for a whole journey (from the request that set it going, "
                        "through every service); the Kafka header correlation_id says the same.",
                        "location": "$message.payload#/correlationid",
                    }
                },
            },
        }

    def channel(self, topic: Topic, types: list[str]) -> AsyncAPIDocument:
        others: dict[str, list[str]] = {}
        for event_type in types:
            if key_of(CATALOG[event_type]) != topic.key:
                others.setdefault(key_of(CATALOG[event_type]), []).append(event_type)
        keys = topic.key + "".join(f"; {key} for {', '.join(names)}" for key, names in others.items())
        publisher = (
            "third-party fulfillment services" if topic is FULFILLMENT_RESPONSES else f"the {topic.owner} service"
        )
        return {
            "address": topic.name,
            "title": topic.name,
            "description": f"Published by {publisher}. Keyed by the event's subject: {keys}. "
            "One key's events stay in order on one partition.",
            "messages": {event_type: self.message(event_type) for event_type in types},
            "bindings": {
                "kafka": {"topic": topic.name, "partitions": topic.partitions, "bindingVersion": KAFKA_BINDING}
            },
        }

    def operation(self, action: str, topic: Topic, types: list[str]) -> AsyncAPIDocument:
        operation: AsyncAPIDocument = {
            "action": action,
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "messages": [{"$ref": f"#/channels/{topic.name}/messages/{event_type}"} for event_type in types],
        }
        if action == "send":
            operation["summary"] = f"Every type on {topic.name}; more may be added within v1."
        else:
            operation["summary"] = f"The types handled from {topic.name}; any other type there is ignored."
            if topic is FULFILLMENT_RESPONSES:
                operation["description"] = (
                    f"Each answer must carry `{ANSWER_PROOF}`, a JWT of the answering fulfillment service "
                    "bound to the message; one without a valid proof is dead-lettered and nothing is applied."
                )
        if self.group is not None and action == "receive":
            group: AsyncAPIDocument = {"type": "string", "enum": [self.group]}
            operation["bindings"] = {"kafka": {"groupId": group, "bindingVersion": KAFKA_BINDING}}
        return operation

    def message(self, event_type: str) -> AsyncAPIDocument:
        if event_type not in self.messages:
            spec = CATALOG[event_type]
            answer = spec.topic is FULFILLMENT_RESPONSES
            headers = "AnswerHeaders" if answer else "EventHeaders"
            self.schemas[event_type] = envelope(spec)
            key = key_of(spec)
            self.messages[event_type] = {
                "name": event_type,
                "title": event_type,
                "summary": text_of(data_schema(event_type), "description").split("\n")[0],
                "headers": {"$ref": f"#/components/schemas/{headers}"},
                "payload": {"$ref": f"#/components/schemas/{event_type}"},
                "correlationId": {"$ref": "#/components/correlationIds/journey"},
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": f"the {key}: the event's subject"},
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
                "examples": [
                    {
                        "name": event_type.replace(".", "_"),
                        "summary": f"{event_type}, keyed by {key} {example_key(spec)!r}",
                        "headers": example_headers(answer),
                        "payload": example_event(spec),
                    }
                ],
            }
        return {"$ref": f"#/components/messages/{event_type}"}

    def dead_letter_channel(self, topic: Topic) -> AsyncAPIDocument:
        self.messages.setdefault("dead_letter", DEAD_LETTER_MESSAGE)
        return {
            "address": topic.dlq,
            "title": topic.dlq,
            "description": f"Messages a consumer of {topic.name} could not process after its retries, keyed as on "
            f"{topic.name}; redrive them with `python -m deploy.dlq`.",
            "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
            "bindings": {"kafka": {"topic": topic.dlq, "partitions": 1, "bindingVersion": KAFKA_BINDING}},
        }

    def component_schemas(self) -> AsyncAPIDocument:
        models = sorted({CATALOG[t].model for t in self.schemas if t in CATALOG}, key=lambda m: m.__name__)
        _, defs = models_json_schema([(model, "validation") for model in models], ref_template=REF)
        data = defs.get("$defs", {})
        fixed: dict[str, JsonValue] = {"CloudEvent": envelope_base(), **HEADER_SCHEMAS}
        if "dead_letter" in self.messages:
            fixed.update(DEAD_LETTER_SCHEMAS)
        clash = (set(data) | set(self.schemas)) & set(fixed) or set(data) & set(self.schemas)
        if clash:
            raise ValueError(f"schema names used twice in the AsyncAPI document: {sorted(clash)}")
        return {**fixed, **dict(sorted(self.schemas.items())), **dict(sorted(data.items()))}


REF = "#/components/schemas/{model}"


def envelope_base() -> Schema:
    """The envelope every message shares: CloudEvent as the platform validates it, `id` and
    `specversion` required as CloudEvents requires them."""
    schema = CloudEvent.model_json_schema(mode="validation")
    schema["required"] = list(ENVELOPE_REQUIRED)
    schema["description"] = (
        "A CloudEvents 1.0 event in structured mode (the Kafka value is the whole event). "
        "De-duplicate by `id` (with `source`); `subject` is the Kafka key."
    )
    attributes = schema["properties"]
    attributes["id"]["description"] = "unique per event: the de-duplication key"
    attributes["source"].update(format="uri-reference", description="urn:fulfillment-platform:<service>")
    attributes["subject"]["description"] = "the aggregate id, also the Kafka message key"
    attributes["dataschema"]["description"] = "the `$id` of the JSON Schema of `data`"
    attributes["traceparent"]["description"] = "W3C trace context of what made the event (distributed tracing)"
    attributes["correlationid"]["description"] = "the journey this event belongs to"
    attributes["causationid"]["description"] = "the `id` of the event whose handling emitted this one"
    return schema


def envelope(spec: EventSpec) -> Schema:
    """One type's event: the envelope with `type` fixed, `dataschema` its URN and `data` its model."""
    properties: dict[str, JsonValue] = {
        "type": {"const": spec.event_type},
        "dataschema": {"const": dataschema_of(spec.event_type)},
        "data": {"$ref": REF.format(model=spec.model.__name__)},
    }
    required: list[JsonValue] = ["type", "data"]
    if spec.topic is FULFILLMENT_RESPONSES:
        properties[ANSWER_PROOF] = {
            "type": "string",
            "description": "the proof that the answering fulfillment service sent it: a JWT (typ answer+jwt) "
            "signed with a key of the platform's JWKS, scope fulfillment_service:<id>, claims event_id, "
            "event_type, event_subject and data_sha256 (SHA-256 of `data` as RFC 8785 JSON), at most 15 minutes",
        }
        required.append(ANSWER_PROOF)
    return {
        "title": f"{spec.event_type} event",
        "allOf": [{"$ref": REF.format(model="CloudEvent")}],
        "type": "object",
        "properties": properties,
        "required": required,
    }


HEADER_SCHEMAS: dict[str, Schema] = {
    "EventHeaders": {
        "type": "object",
        "description": "Kafka headers: structured mode, so `content-type` is the only CloudEvents header "
        "and no `ce_*` header is set.",
        "properties": {
            "content-type": {"type": "string", "const": CLOUDEVENTS_CONTENT_TYPE},
            "correlation_id": {"type": "string", "description": "the event's `correlationid`"},
            "x-redriven-from": {"type": "string", "description": "<topic>.dlq:<partition>:<offset> of a redriven one"},
        },
        "required": ["content-type"],
        "propertyNames": {"not": {"pattern": "^ce_"}},
    },
    "AnswerHeaders": {
        "type": "object",
        "description": "Kafka headers of an answer: the platform reads the value as a structured-mode "
        "CloudEvent, whatever the headers say.",
        "properties": {"content-type": {"type": "string", "examples": [CLOUDEVENTS_CONTENT_TYPE]}},
    },
}

DEAD_LETTER_SCHEMAS: dict[str, Schema] = {
    "DeadLetterHeaders": {
        "type": "object",
        "description": "The original's content type (application/json for a summary) and why it was given up on.",
        "properties": {
            "content-type": {"type": "string"},
            "x-dlq-reason": {"type": "string", "enum": list(DEAD_LETTER_REASONS)},
            "x-dlq-error": {"type": "string", "maxLength": 2000},
            "x-dlq-original-topic": {"type": "string"},
            "x-dlq-original-partition": {"type": "string"},
            "x-dlq-original-offset": {"type": "string"},
            "x-dlq-consumer-group": {"type": "string"},
            "x-dlq-event-type": {"type": "string"},
            "x-dlq-truncated-from-bytes": {"type": "string"},
        },
        "required": ["x-dlq-reason", "x-dlq-error", "x-dlq-original-topic"],
    },
    "DeadLetterValue": {
        "description": "The message as it came (usually an event of the original topic, possibly malformed), "
        "or a summary when it was too large to keep whole.",
        "anyOf": [{"$ref": REF.format(model="CloudEvent")}, {"$ref": REF.format(model="TruncatedDeadLetter")}, {}],
    },
    "TruncatedDeadLetter": {
        "type": "object",
        "properties": {
            "truncated": {"const": True},
            "original_bytes": {"type": "integer"},
            "sha256": {"type": "string"},
            "head": {"type": "string", "description": "the first 16 KiB, as text"},
        },
        "required": ["truncated", "original_bytes", "sha256", "head"],
    },
}

DEAD_LETTER_MESSAGE: AsyncAPIDocument = {
    "name": "dead_letter",
    "title": "dead letter",
    "summary": "A message a consumer could not process, as it came, with the reason in x-dlq-* headers.",
    "headers": {"$ref": REF.format(model="DeadLetterHeaders")},
    "payload": {"$ref": REF.format(model="DeadLetterValue")},
    "bindings": {
        "kafka": {"key": {"type": "string", "description": "the original's key"}, "bindingVersion": KAFKA_BINDING}
    },
}
