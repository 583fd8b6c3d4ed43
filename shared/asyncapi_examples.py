"""Examples and keys for the AsyncAPI documents (shared/asyncapi.py): each message type's Kafka key,
and a valid example of each message, generated from its schema and checked against it, so that a
subscriber reading the documents sees a real-looking event of every type."""

from __future__ import annotations

import uuid

from pydantic import JsonValue

from shared.catalog import EventSpec
from shared.events import ANSWER_PROOF, dataschema_of, source_of
from shared.messaging import CLOUDEVENTS_CONTENT_TYPE
from shared.schemas import Schema, data_schema, subschema, subschemas, text_of
from shared.topics import FULFILLMENT_RESPONSES

_KEYS = {"inventory.level_changed": "sku", "location.updated": "location id"}
_KEY_PREFIXES = {"bulk_job.": "bulk job id", "order_bulk_job.": "bulk job id"}
_EXAMPLE_KEYS = {
    "order id": "order-1001",
    "sku": "MUG-1",
    "location id": "warehouse-1",
    "bulk job id": "bulk-job-1",
    "fulfillment service id": "acme-3pl",
}
THIRD_PARTY = "acme-3pl"
EXAMPLE_TIME = "2030-01-02T03:04:05Z"
EXAMPLE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
EXAMPLE_PROOF = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImFuc3dlcitqd3QifQ.eyJzdWIiOiJhY21lLTNwbCJ9.c2lnbmF0dXJl"
"""An answer's proof, shortened (a real one's claims and signature are longer)."""


def key_of(spec: EventSpec) -> str:
    """What a type's events are keyed by (their `subject`): the topic's key but for a few types."""
    if spec.event_type in _KEYS:
        return _KEYS[spec.event_type]
    for prefix, key in _KEY_PREFIXES.items():
        if spec.event_type.startswith(prefix):
            return key
    return spec.topic.key


def example_key(spec: EventSpec) -> str:
    """The example event's key (its `subject`)."""
    return _EXAMPLE_KEYS.get(key_of(spec), "key-1")


# --- examples ------------------------------------------------------------------------------------


def example_headers(answer: bool) -> dict[str, JsonValue]:
    if answer:
        return {"content-type": CLOUDEVENTS_CONTENT_TYPE}
    return {"content-type": CLOUDEVENTS_CONTENT_TYPE, "correlation_id": EXAMPLE_TRACE}


def example_event(spec: EventSpec) -> dict[str, JsonValue]:
    """An event of this type as it travels, its data made from the type's schema (so that a type
    added to the catalog has one too; the tests check each against the catalog model)."""
    schema = data_schema(spec.event_type)
    answer = spec.topic is FULFILLMENT_RESPONSES
    event: dict[str, JsonValue] = {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, dataschema_of(spec.event_type))),
        "source": f"urn:example:{THIRD_PARTY}" if answer else source_of(spec.topic.owner),
        "type": spec.event_type,
        "time": EXAMPLE_TIME,
        "subject": example_key(spec),
        "datacontenttype": "application/json",
        "dataschema": dataschema_of(spec.event_type),
        "data": _Example(schema).value(schema, "location" if key_of(spec) == "location id" else "data", None),
    }
    if answer:
        event[ANSWER_PROOF] = EXAMPLE_PROOF
    else:
        event.update(
            actor="merchant-7",
            traceparent=f"00-{EXAMPLE_TRACE}-00f067aa0ba902b7-01",
            correlationid=EXAMPLE_TRACE,
            causationid="0d5b6c8e-4f7a-4a38-9a51-0c3f1a2b3c4d",
        )
    return event


_ID_EXAMPLES = {
    "order": "order-1001",
    "fulfillment_order": "fo-1",
    "fulfillment": "ful-1",
    "location": "warehouse-1",
    "previous_location": "warehouse-2",
    "line_item": "li-1",
    "notification": "ntf-1",
    "bulk_job": "bulk-job-1",
}
_TEXT_EXAMPLES: dict[str, JsonValue] = {
    "sku": "MUG-1",
    "email": "buyer@example.com",
    "to": "buyer@example.com",
    "currency": "SEK",
    "title": "Mug",
    "fulfillment_service": THIRD_PARTY,
    "unit_price": "12.50",
    "numbers": ["1Z999AA10123456784"],
    "company": "UPS",
    "urls": ["https://www.ups.com/track?tracknum=1Z999AA10123456784"],
    "digital_asset_url": "https://downloads.example.com/ebook.pdf",
    "shipping_address": {"address1": "Storgatan 1", "city": "Lund", "zip": "222 22", "country_code": "SE"},
    "reason": "customer",
    "subject": "Your order has shipped",
    "action": "hold",
    "code": "not_found",
    "type": "shipping_confirmation",
}
_NUMBER_EXAMPLES = {"on_hand": 5, "reserved": 1, "available": 4, "total": 3, "done": 3, "succeeded": 3, "failed": 0}


class _Example:
    """A value for a schema: what the field's name suggests, else its default, else the simplest
    value of its type."""

    def __init__(self, root: Schema) -> None:
        self.definitions = subschema(root.get("$defs", {}))

    def value(self, schema: Schema, name: str, parent: str | None) -> JsonValue:
        while "$ref" in schema:
            schema = {
                **subschema(self.definitions[text_of(schema, "$ref").rsplit("/", 1)[1]]),
                **{k: v for k, v in schema.items() if k != "$ref"},
            }
        if "enum" in schema:
            enum = schema["enum"]
            if not isinstance(enum, list):
                raise TypeError(f"enum of a JSON Schema is a list, not {enum!r}")
            return enum[0]
        if "const" in schema:
            return schema["const"]
        if name in _TEXT_EXAMPLES and name != "reason":
            return _TEXT_EXAMPLES[name]
        if "default" in schema and not isinstance(schema["default"], dict | list):
            return schema["default"]
        if "anyOf" in schema:
            branches = [b for b in subschemas(schema["anyOf"]) if b.get("type") != "null"]
            return self.value(branches[0], name, parent)
        kind = schema.get("type")
        if kind == "object":
            if "properties" not in schema:
                return {}
            fields = subschema(schema["properties"])
            return {field: self.value(subschema(sub), field, name) for field, sub in fields.items()}
        if kind == "array":
            return [self.value(subschema(schema["items"]), name.removesuffix("s"), parent)]
        if kind == "integer":
            return _NUMBER_EXAMPLES.get(name, 1)
        if kind == "number":
            return 1
        if kind == "boolean":
            return True
        return self.text(name, parent)

    def text(self, name: str, parent: str | None) -> str:
        if name == "id" or name.endswith("_id"):
            owner = (parent or "") if name == "id" else name.removesuffix("_id")
            return _ID_EXAMPLES.get(owner, f"{owner or 'item'}-1")
        if name.endswith("_at") or name in ("fulfill_by", "time"):
            return EXAMPLE_TIME
        if name == "name":
            return "Main warehouse" if parent == "location" else "Ada Buyer"
        if name == "reason":
            return str(_TEXT_EXAMPLES["reason"])
        return name.replace("_", " ")
