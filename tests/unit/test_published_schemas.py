"""The JSON Schemas of every event type's data are committed (docs/schemas/v1/<type>.json, `$id` the
type's `dataschema`) and a change that would break a v1 consumer fails here, as a schema
registry's backward-compatibility check would (issue 13: "a test fails when a change would break
a v1 consumer (a field removed, renamed, retyped, or made required)")."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from deploy import contracts
from deploy.compatibility import breaking_changes
from shared.catalog import CATALOG, Contract, EventSpec, Location
from shared.events import dataschema_of
from shared.schemas import data_schemas

Schema = dict[str, Any]
"""A JSON Schema as these tests walk and change it: JSON read without narrowing each step."""
Change = Callable[[dict[str, Schema]], None]


def published() -> dict[str, Schema]:
    return contracts.published_schemas()


def test_every_catalog_type_has_its_schema_committed_as_the_catalog_generates_it() -> None:
    """A change to the catalog is committed with its schema (`python -m deploy.contracts`)."""
    stale = [str(path.relative_to(contracts.ROOT)) for path in contracts.stale(contracts.generated())]
    assert not stale, f"out of date, run `python -m deploy.contracts` and commit: {stale}"
    assert set(published()) >= set(CATALOG)


def test_each_schema_is_valid_json_schema_and_its_id_is_the_types_dataschema() -> None:
    for event_type, schema in published().items():
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == dataschema_of(event_type)


def test_the_catalog_breaks_no_v1_consumer_of_the_published_schemas() -> None:
    """The guard itself: the committed v1 schemas against what the catalog says now."""
    assert breaking_changes(published(), data_schemas()) == []


def _properties(schemas: dict[str, Schema], event_type: str, model: str | None = None) -> dict[str, Any]:
    schema = schemas[event_type] if model is None else schemas[event_type]["$defs"][model]
    properties: dict[str, Any] = schema["properties"]
    return properties


def remove_field(schemas: dict[str, Schema]) -> None:
    del _properties(schemas, "order.paid", "OrderSnapshot")["currency"]


def rename_field(schemas: dict[str, Schema]) -> None:
    fields = _properties(schemas, "location.updated")
    fields["rank"] = fields.pop("priority")
    schemas["location.updated"]["required"] = ["id", "name", "rank"]


def retype_field(schemas: dict[str, Schema]) -> None:
    _properties(schemas, "inventory.level_changed")["on_hand"] = {"type": "string", "title": "On Hand"}


def make_nullable(schemas: dict[str, Schema]) -> None:
    _properties(schemas, "inventory.level_changed")["sku"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def make_required(schemas: dict[str, Schema]) -> None:
    schemas["inventory.level_changed"]["required"].append("seq")


def add_required_field(schemas: dict[str, Schema]) -> None:
    _properties(schemas, "location.updated")["region"] = {"type": "string"}
    schemas["location.updated"]["required"].append("region")


def remove_enum_value(schemas: dict[str, Schema]) -> None:
    schemas["fulfillment_order.placed_on_hold"]["$defs"]["HoldReason"]["enum"].remove("OTHER")


def remove_type(schemas: dict[str, Schema]) -> None:
    del schemas["notification.failed"]


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        (remove_field, "order.paid: data.order.currency: field removed (or renamed)"),
        (rename_field, "location.updated: data.priority: field removed (or renamed)"),
        (retype_field, "inventory.level_changed: data.on_hand: retyped ('integer' -> 'string')"),
        (make_nullable, "inventory.level_changed: data.sku: retyped (anyOf none -> [string, null])"),
        (make_required, "inventory.level_changed: data.seq: made required"),
        (add_required_field, "location.updated: data.region: new field is required"),
        (remove_enum_value, "fulfillment_order.placed_on_hold: data.fulfillment_order.holds[].reason: enum value"),
        (remove_type, "notification.failed: type removed"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_a_change_that_breaks_a_v1_consumer_fails_the_guard(change: Change, reported: str) -> None:
    """Applied to a copy of the committed schemas: removed, renamed, retyped, made required, an
    enum value or a type removed."""
    changed = copy.deepcopy(published())
    change(changed)
    problems = breaking_changes(published(), changed)
    assert any(problem.startswith(reported) for problem in problems), problems


def add_optional_field(schemas: dict[str, Schema]) -> None:
    _properties(schemas, "order.paid", "OrderSnapshot")["note"] = {"type": "string", "default": ""}


def add_enum_value(schemas: dict[str, Schema]) -> None:
    schemas["fulfillment_order.placed_on_hold"]["$defs"]["HoldReason"]["enum"].append("AWAITING_PICKUP")


def add_type(schemas: dict[str, Schema]) -> None:
    schemas["order.archived"] = {**copy.deepcopy(schemas["order.paid"]), "$id": dataschema_of("order.archived")}


def make_optional(schemas: dict[str, Schema]) -> None:
    schemas["location.updated"]["required"].remove("priority")


def reword(schemas: dict[str, Schema]) -> None:
    schemas["order.paid"]["description"] = "Paid: the order snapshot as it is now."
    _properties(schemas, "order.paid", "OrderSnapshot")["currency"]["title"] = "ISO 4217 code"


@pytest.mark.parametrize(
    "change",
    [add_optional_field, add_enum_value, add_type, make_optional, reword],
    ids=lambda value: str(value.__name__),
)
def test_an_addition_passes_the_guard(change: Change) -> None:
    changed = copy.deepcopy(published())
    change(changed)
    assert breaking_changes(published(), changed) == []


class LocationWithoutPriority(Contract):
    """Location, as if someone dropped `priority` from the catalog."""

    id: str
    name: str
    active: bool = True
    fulfillment_service: str | None = None
    workflow: str = "new"


class LocationWithRegion(Location):
    region: str | None = None


@pytest.fixture
def committed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generator writing to a copy of docs/schemas/v1."""
    folder = tmp_path / "v1"
    shutil.copytree(contracts.SCHEMAS, folder)
    monkeypatch.setattr(contracts, "SCHEMAS", folder)
    return folder


def test_the_generator_refuses_to_publish_a_removed_field_and_writes_an_added_one(
    committed_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regenerating cannot launder a breaking change into the baseline: the script refuses it."""
    spec = CATALOG["location.updated"]
    before = (committed_copy / "location.updated.json").read_text()
    monkeypatch.setitem(CATALOG, "location.updated", EventSpec(spec.event_type, spec.topic, LocationWithoutPriority))
    assert contracts.main([]) == 1
    assert "location.updated: data.priority: field removed (or renamed)" in capsys.readouterr().out
    assert (committed_copy / "location.updated.json").read_text() == before

    monkeypatch.setitem(CATALOG, "location.updated", EventSpec(spec.event_type, spec.topic, LocationWithRegion))
    assert contracts.main(["--check"]) == 1
    assert contracts.main([]) == 0
    written = json.loads((committed_copy / "location.updated.json").read_text())
    assert "region" in written["properties"] and "region" not in written["required"]
    assert contracts.main(["--check"]) == 0
