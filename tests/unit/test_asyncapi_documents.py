"""The AsyncAPI documents are complete (issue 13: "all 10 receive operations have payload
{"type": "null"}; the six fulfillment.responses.v1 answers a third-party service must send have no
schema at all; message keys and headers are not described; defaultContentType says
application/json; inventory.level_changed and location.updated are said to be keyed by order id;
the envelope schema does not require id and specversion")."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from deploy import contracts
from shared.asyncapi import PLATFORM_CONSUMES, platform_document, service_document, to_yaml, types_on
from shared.catalog import CATALOG, EventSpec, OrderPaid
from shared.events import ANSWER_PROOF, dataschema_of, parse_message
from shared.messaging import CLOUDEVENTS_CONTENT_TYPE
from shared.topics import FULFILLMENT_RESPONSES, ORDERS_EVENTS
from tests.asyncapi_tools import Messages, errors, official_parser_diagnostics

Document = dict[str, Any]
"""An AsyncAPI document as these tests walk it: JSON read without narrowing each step."""


@pytest.fixture(scope="module")
def platform() -> Document:
    return platform_document()


def resolve(document: Document, ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def messages_of(document: Document, action: str) -> dict[str, Any]:
    """Every message an operation of this action names, by name, resolved."""
    found: dict[str, Any] = {}
    for operation in document["operations"].values():
        if operation["action"] == action:
            for ref in operation["messages"]:
                message = resolve(document, resolve(document, ref["$ref"])["$ref"])
                found[message["name"]] = message
    return found


def test_the_committed_platform_document_is_what_the_catalog_generates(platform: Document) -> None:
    """docs/asyncapi.yaml: regenerate with `python -m deploy.contracts` and commit it with the change."""
    assert contracts.ASYNCAPI.read_text() == to_yaml(platform), "run `python -m deploy.contracts` and commit"


def test_every_catalog_type_is_a_message_with_its_schema_key_headers_and_example(platform: Document) -> None:
    sent, received = messages_of(platform, "send"), messages_of(platform, "receive")
    assert set(received) == set(types_on(FULFILLMENT_RESPONSES)) == {
        "fulfillment_service.request_accepted", "fulfillment_service.request_rejected",
        "fulfillment_service.cancellation_accepted", "fulfillment_service.cancellation_rejected",
        "fulfillment_service.shipped", "fulfillment_service.cannot_complete",
        "fulfillment_service.progress_reported",
    }  # fmt: skip
    assert (set(sent) | set(received)) - {"dead_letter"} == set(CATALOG)
    for name, message in {**sent, **received}.items():
        payload = resolve(platform, message["payload"]["$ref"])
        assert payload.get("type") != "null" and (payload.get("properties") or payload.get("anyOf")), name
        assert message["headers"]["$ref"].startswith("#/components/schemas/"), name
        assert message["bindings"]["kafka"]["key"]["type"] == "string", name
        if name == "dead_letter":
            continue
        assert payload["properties"]["type"] == {"const": name}
        assert payload["properties"]["dataschema"] == {"const": dataschema_of(name)}
        assert message["examples"][0]["payload"]["type"] == name


def test_the_third_party_answers_carry_their_proof(platform: Document) -> None:
    for name in types_on(FULFILLMENT_RESPONSES):
        payload = platform["components"]["schemas"][name]
        assert ANSWER_PROOF in payload["required"] and payload["properties"][ANSWER_PROOF]["type"] == "string"
    operation = platform["operations"]["receive.fulfillment.responses.v1"]
    assert ANSWER_PROOF in operation["description"]


@pytest.mark.parametrize(
    ("event_type", "key"),
    [
        ("inventory.level_changed", "the sku"),
        ("location.updated", "the location id"),
        ("inventory.reserved", "the order id"),
        ("order.paid", "the order id"),
        ("bulk_job.progress", "the bulk job id"),
        ("fulfillment_service.fulfillment_requested", "the fulfillment service id"),
        ("fulfillment_service.shipped", "the order id"),
    ],
)
def test_each_message_says_what_it_is_keyed_by(platform: Document, event_type: str, key: str) -> None:
    """The key is the event's subject: sku and location id are not order ids."""
    described = platform["components"]["messages"][event_type]["bindings"]["kafka"]["key"]["description"]
    assert described.startswith(key + ":"), described


def test_the_envelope_requires_id_and_specversion_in_structured_mode(platform: Document) -> None:
    assert platform["defaultContentType"] == "application/cloudevents+json"
    envelope = platform["components"]["schemas"]["CloudEvent"]
    assert {"specversion", "id", "source", "type", "subject", "data"} <= set(envelope["required"])
    headers = platform["components"]["schemas"]["EventHeaders"]
    assert headers["properties"]["content-type"]["const"] == CLOUDEVENTS_CONTENT_TYPE
    assert headers["required"] == ["content-type"]
    checker = Messages(platform)
    assert checker.problems("order.paid", "headers", {"content-type": CLOUDEVENTS_CONTENT_TYPE}) == []
    assert checker.problems("order.paid", "headers", {"content-type": CLOUDEVENTS_CONTENT_TYPE, "ce_type": "x"})


def test_every_example_is_an_event_the_platform_accepts_and_the_schema_validates(platform: Document) -> None:
    checker = Messages(platform)
    for name, message in platform["components"]["messages"].items():
        for example in message.get("examples", []):
            event, data = parse_message(json.dumps(example["payload"]))
            assert (event.type, type(data)) == (name, CATALOG[name].model)
            assert checker.problems(name, "payload", example["payload"]) == [], name
            assert checker.problems(name, "headers", example["headers"]) == [], name


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("order.paid", lambda e: e.pop("id")),
        ("order.paid", lambda e: e.pop("specversion")),
        ("order.paid", lambda e: e["data"]["order"].pop("currency")),
        ("inventory.level_changed", lambda e: e["data"].update(on_hand="five")),
        ("order.paid", lambda e: e.update(type="order.created")),
        ("fulfillment_service.shipped", lambda e: e.pop(ANSWER_PROOF)),
    ],
)
def test_a_message_that_breaks_its_schema_is_refused(platform: Document, name: str, broken: Any) -> None:
    """The validation the end-to-end test relies on is not vacuous."""
    event = copy.deepcopy(platform["components"]["messages"][name]["examples"][0]["payload"])
    broken(event)
    assert Messages(platform).problems(name, "payload", event)


def test_a_type_added_to_the_catalog_is_documented_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other work adds types (order.edited): no list to keep in step."""
    monkeypatch.setitem(CATALOG, "order.edited", EventSpec("order.edited", ORDERS_EVENTS, OrderPaid))
    document: Document = platform_document()
    assert "order.edited" in document["channels"]["orders.events.v1"]["messages"]
    assert "order.edited" in messages_of(document, "send")
    orders = service_document("orders", "orders", "1", handled=["fulfillment.created"])
    assert "order.edited" in messages_of(orders, "send")


def test_a_service_document_describes_what_it_receives(platform: Document) -> None:
    handled = ["order.paid", "inventory.reserved", "fulfillment_service.shipped"]
    document: Document = service_document("fulfillment", "Fulfillment", "1.0.0", handled)
    assert set(messages_of(document, "receive")) == set(handled)
    assert {op["bindings"]["kafka"]["groupId"]["enum"][0] for op in document["operations"].values()
            if op["action"] == "receive"} == {"fulfillment"}  # fmt: skip
    assert {"fulfillment.events.v1", "fulfillment.requests.v1"} <= set(document["channels"])
    dead_letters = {name for name in document["channels"] if name.endswith(".dlq")}
    assert dead_letters == {"orders.events.v1.dlq", "inventory.events.v1.dlq", "fulfillment.responses.v1.dlq"}
    assert {t.dlq for t in PLATFORM_CONSUMES} <= set(platform["channels"])


def test_the_official_parser_reads_the_platform_document_without_errors(tmp_path: Path, platform: Document) -> None:
    broken = copy.deepcopy(platform)
    broken["operations"]["send.orders.events.v1"]["channel"] = {"$ref": "#/channels/nowhere"}
    broken["components"]["schemas"]["CloudEvent"]["type"] = "record"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    found = official_parser_diagnostics(contracts.ASYNCAPI, tmp_path / "broken.json")
    assert errors(found[str(contracts.ASYNCAPI)]) == []
    assert errors(found[str(tmp_path / "broken.json")]), "the parser must see what is wrong"
