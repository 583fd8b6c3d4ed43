"""The CloudEvents envelope: what goes out comes back the same; what is wrong says what."""

from __future__ import annotations

import json

import pytest

from shared.catalog import CATALOG, DisplayFulfillmentStatus, OrderFulfillmentStatusChanged
from shared.events import CloudEvent, EnvelopeError, new_event, parse_event
from shared.topics import ORDERS_EVENTS, all_topic_partitions


def status_changed() -> CloudEvent:
    data = OrderFulfillmentStatusChanged(order_id="o-1", fulfillment_status=DisplayFulfillmentStatus.FULFILLED)
    return new_event("orders", "order.fulfillment_status_changed", "o-1", data)


def test_round_trip_keeps_every_attribute() -> None:
    event = status_changed()
    parsed = parse_event(event.to_bytes())
    assert parsed == event
    assert parsed.specversion == "1.0"
    assert parsed.datacontenttype == "application/json"
    assert parsed.subject == "o-1"
    assert parsed.spec.topic == ORDERS_EVENTS


def test_every_event_gets_a_unique_id() -> None:
    assert status_changed().id != status_changed().id


def test_unknown_type_is_rejected_with_its_name() -> None:
    raw = json.loads(status_changed().to_bytes())
    raw["type"] = "order.teleported"
    with pytest.raises(EnvelopeError, match="unknown event type 'order.teleported'"):
        parse_event(json.dumps(raw))


def test_missing_envelope_attribute_is_named() -> None:
    raw = json.loads(status_changed().to_bytes())
    del raw["subject"]
    with pytest.raises(EnvelopeError, match="subject: Field required"):
        parse_event(json.dumps(raw))


def test_data_that_does_not_match_its_type_is_named() -> None:
    raw = json.loads(status_changed().to_bytes())
    raw["data"]["fulfillment_status"] = "TELEPORTED"
    with pytest.raises(EnvelopeError, match="order.fulfillment_status_changed data is invalid: fulfillment_status"):
        parse_event(json.dumps(raw))


def test_not_json_is_rejected() -> None:
    with pytest.raises(EnvelopeError, match="not a CloudEvents 1.0 envelope"):
        parse_event(b"{not json")


def test_wrong_payload_model_for_type_is_refused() -> None:
    data = OrderFulfillmentStatusChanged(order_id="o-1", fulfillment_status=DisplayFulfillmentStatus.FULFILLED)
    with pytest.raises(EnvelopeError, match="carries OrderPaid"):
        new_event("orders", "order.paid", "o-1", data)


def test_fields_added_by_a_newer_producer_are_tolerated() -> None:
    raw = json.loads(status_changed().to_bytes())
    raw["data"]["added_later"] = 1
    raw["traceparent"] = "00-abc"
    assert parse_event(json.dumps(raw)).type == "order.fulfillment_status_changed"


def test_every_catalog_topic_is_provisioned() -> None:
    provisioned = all_topic_partitions()
    for spec in CATALOG.values():
        assert spec.topic.name in provisioned
        assert spec.topic.dlq in provisioned


def test_an_answer_from_outside_cannot_grow_the_events_it_causes() -> None:
    """Review finding: a `shipped` answer just under 1 MB of tracking numbers made fulfillment's
    next event too large to publish. Answers have the same bounds as the HTTP API."""
    data = {"fulfillment_order_id": "fo-1", "fulfillment_service": "acme", "tracking": {"numbers": ["1Z"] * 51}}
    raw = json.dumps({"specversion": "1.0", "id": "e-1", "source": "acme", "type": "fulfillment_service.shipped",
                      "subject": "o-1", "data": data})  # fmt: skip
    with pytest.raises(EnvelopeError, match="tracking.numbers"):
        parse_event(raw)
