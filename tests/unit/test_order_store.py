"""How an order is stored (services/orders/store.py): the typed `Order` in and out of the document
shape every earlier version wrote and read (a public contract), with the fields the listing sorts
by computed by the mapping, never by the rules (issue 10)."""

from __future__ import annotations

from dataclasses import replace

from services.orders import domain, store
from services.orders.domain import CancelReason, Refund
from shared.clock import NO_DEADLINE
from shared.events import CloudEvent
from tests.unit.test_order_rules import LATER, NOW, fulfillment_event, placed, record

STORED_FIELDS = {
    "id", "customer", "shipping_address", "currency", "financial_status", "post_purchase_pending", "line_items",
    "fulfillment_status", "fulfill_by", "fulfill_by_sort", "created_at", "updated_at", "paid_at", "cancelled_at",
    "cancel_reason", "cancellation", "fulfillment_orders", "timeline", "sort_fulfill_by", "sort_created_at",
    # issue 12, added (with defaults: earlier documents load): the number and whether the sequencer
    # still owes it, the waiting flag, the custom status code, comments, the warehouse status.
    "number", "number_pending", "waiting", "custom_status", "comments", "warehouse_status",
}  # fmt: skip


def test_an_order_is_stored_in_the_shape_it_always_had() -> None:
    order = domain.cancel(placed(financial_status="paid"), refund=Refund.NOW, restock=True, notify_customer=False,
                          reason=CancelReason.FRAUD, now=LATER).document  # fmt: skip
    doc = store.MAPPING.dump(order)
    assert set(doc) == STORED_FIELDS, "no notes once folded into the timeline, no version (the store's)"
    assert doc["line_items"][0]["unit_price"] == "99.50" and doc["line_items"][0]["id"] == order.line_items[0].id
    assert doc["financial_status"] == "refunded" and doc["cancel_reason"] == "fraud"
    assert doc["cancellation"] == {"refund": "now", "refunded": True, "restock": True, "notify_customer": False,
                                   "reason": "fraud"}  # fmt: skip
    assert doc["shipping_address"]["city"] == "Stockholm" and doc["fulfillment_orders"] == {}
    assert [set(entry) for entry in doc["timeline"]] == [
        {"at", "recorded_at", "type", "source", "event_id", "actor", "message", "details"}
    ] * 3
    assert doc["fulfill_by"] is None and doc["fulfill_by_sort"] == NO_DEADLINE
    assert doc["sort_fulfill_by"] == f"~{NO_DEADLINE}|{NOW}|{order.id}"
    assert doc["sort_created_at"] == f"~{NOW}|{order.id}"


def test_the_deadline_fields_follow_the_open_fulfillment_orders() -> None:
    order = placed(financial_status="paid")
    order = record(order, fulfillment_event(order, fulfill_by="2025-05-03T00:00:00Z"), NOW).document
    doc = store.MAPPING.dump(order)
    assert doc["fulfill_by"] == doc["fulfill_by_sort"] == "2025-05-03T00:00:00.000000+00:00"
    assert doc["sort_fulfill_by"].startswith("~2025-05-03T00:00:00.000000+00:00|")
    assert doc["fulfillment_orders"]["fo-1"]["status"] == "OPEN"
    closed = fulfillment_event(order, "fulfillment_order.cancelled", status="CANCELLED", updated_at=LATER)
    doc = store.MAPPING.dump(record(order, closed).document)
    assert doc["fulfill_by"] is None and doc["fulfill_by_sort"] == NO_DEADLINE


def test_a_stored_order_loads_as_it_was_written() -> None:
    order = placed(financial_status="paid", post_purchase_pending=True)
    order = record(
        order, fulfillment_event(order, status="ON_HOLD", holds=[{"reason": "POST_PURCHASE_UPSELL"}])
    ).document
    order = domain.cancel(order, refund=Refund.LATER, restock=False, notify_customer=True, reason=CancelReason.OTHER,
                          now=LATER).document  # fmt: skip
    stored = {**store.MAPPING.dump(order), "version": 3}
    assert store.MAPPING.load(stored) == order


def test_an_order_stored_by_an_earlier_version_loads() -> None:
    """Earlier documents lack the fields added since (timeline `recorded_at`, `actor`, `message` and
    `details`, the cancellation, the listing keys) and may hold notes not folded yet: they load with defaults."""
    entry = {"at": NOW, "type": "order.created", "source": "orders", "event_id": "e-1"}
    note = {"at": LATER, "recorded_at": LATER, "type": "inventory.reserved", "source": "inventory", "event_id": "e-2",
            "actor": None}  # fmt: skip
    earlier = {
        "id": "o-1", "version": 7, "customer": {"email": "ada@example.com", "name": "Ada"}, "shipping_address": None,
        "currency": "SEK", "financial_status": "pending", "created_at": NOW, "updated_at": NOW,
        "line_items": [{"id": "l-1", "sku": "EBOOK", "title": "E-book", "quantity": 1, "unit_price": "10",
                        "requires_shipping": False, "digital_asset_url": "https://files.example.com/ebook.pdf"}],
        "fulfillment_status": "UNFULFILLED", "fulfillment_orders": {}, "timeline": [entry],
        "timeline_notes": {"e-2": note},
    }  # fmt: skip
    order = store.MAPPING.load(earlier)
    assert order.post_purchase_pending is False and order.cancellation is None and order.paid_at is None
    assert order.timeline[0].recorded_at is None and order.timeline[0].actor is None
    assert order.timeline[0].message == "" and order.timeline[0].details == {}
    assert [e.type for e in domain.timeline(order)] == ["order.created", "inventory.reserved"]
    assert store.MAPPING.dump(order)["timeline_notes"]["e-2"] == {**note, "message": "", "details": {}}, (
        "notes stay until the next rule folds them"
    )
    assert store.MAPPING.dump(order)["line_items"][0]["unit_price"] == "10"
    paid = domain.pay(order, LATER)
    assert paid is not None and "timeline_notes" not in store.MAPPING.dump(paid.document)


def test_a_note_is_one_field_under_its_event_id() -> None:
    event = CloudEvent(source="inventory", type="inventory.reserved", subject="o-1", data={}, actor="alice")
    entry = domain.timeline_entry(event, LATER)
    assert store.note(entry) == {
        f"timeline_notes.{event.id}": {"at": event.time.isoformat(), "recorded_at": LATER,
                                       "type": "inventory.reserved", "source": "inventory", "event_id": event.id,
                                       "actor": "alice", "message": "Inventory reserved", "details": {}}
    }  # fmt: skip
    order = placed()
    noted = store.MAPPING.load({**store.MAPPING.dump(order), "timeline_notes": {event.id: store.note(entry)[
        f"timeline_notes.{event.id}"]}})  # fmt: skip
    assert domain.timeline(noted)[-1] == entry and replace(noted, timeline_notes={}) == order
