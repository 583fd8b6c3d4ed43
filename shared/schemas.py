"""The published JSON Schema of each event type's `data`, generated from the catalog.

Subscribers validate against these (the CloudEvents `dataschema` of an event is its schema's `$id`);
`python -m deploy.contracts` writes them to docs/schemas/v1/<type>.json and the AsyncAPI documents
(shared/asyncapi.py) embed the same ones. Validation mode: a schema says what the platform accepts
as that type's data, which is what is on the topic, events from before a field existed included
(a field with a default is not required).
"""

from __future__ import annotations

from pydantic import JsonValue

from shared.catalog import CATALOG
from shared.events import dataschema_of

Schema = dict[str, JsonValue]
"""A JSON Schema (or a part of one): a JSON object."""

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def data_schema(event_type: str) -> Schema:
    """The JSON Schema of `event_type`'s data, standalone (its nested models under `$defs`)."""
    body = CATALOG[event_type].model.model_json_schema(mode="validation")
    model_title = body.pop("title")
    description = body.pop("description", f"The data of {event_type} events ({model_title}).")
    head = {"$schema": DIALECT, "$id": dataschema_of(event_type), "title": event_type, "description": description}
    return {**head, **body}


def data_schemas() -> dict[str, Schema]:
    """Every catalog type's data schema, by type: a type added to the catalog is in here at once."""
    return {event_type: data_schema(event_type) for event_type in sorted(CATALOG)}


def subschema(value: JsonValue) -> Schema:
    """A value read from a schema where the dialect puts a schema (`properties`' values, `items`,
    `anyOf`'s branches, `$defs`'): a JSON object, or the generated schema is not what it claims."""
    if not isinstance(value, dict):
        raise TypeError(f"a JSON Schema is an object, not {value!r}")
    return value


def subschemas(value: JsonValue) -> list[Schema]:
    """The schemas of a list keyword (`anyOf`, `allOf`, `prefixItems`)."""
    if not isinstance(value, list):
        raise TypeError(f"a list of JSON Schemas is a list, not {value!r}")
    return [subschema(item) for item in value]


def text_of(schema: Schema, keyword: str) -> str:
    """A keyword whose value is text (`description`, `title`, `$ref`)."""
    value = schema[keyword]
    if not isinstance(value, str):
        raise TypeError(f"{keyword} of a JSON Schema is text, not {value!r}")
    return value
