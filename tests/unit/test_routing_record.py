"""The per-order routing record: the stored plan that fulfillment orders are created from, and how
it is stored (services/fulfillment/store.py ROUTING_RECORDS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.fulfillment.domain import order_routing
from services.fulfillment.domain.order_routing import RoutingContext, RoutingRecord
from services.fulfillment.domain.routing import RoutingLocation
from services.fulfillment.store import FULFILLMENT_ORDERS, ROUTING_RECORDS
from shared.catalog import HoldReason, OrderSnapshot
from shared.store import Change, Document
from tests import fulfillment_documents as fo_rules

load = FULFILLMENT_ORDERS.load

T0 = "2030-01-01T10:00:00.000000+00:00"
T1 = "2030-01-01T10:01:00.000000+00:00"
A = RoutingLocation("A", "Stockholm", priority=1)
B = RoutingLocation("B", "Gothenburg", priority=2)
THIRD_PARTY = RoutingLocation("C", "ShipCo", priority=3, fulfillment_service="shipco")


def order(lines: list[tuple[str, int, bool]], **extra: Any) -> OrderSnapshot:
    return OrderSnapshot.model_validate({
        "id": "order-1", "customer": {"email": "b@example.com", "name": "B"}, "currency": "SEK",
        "financial_status": "paid", "created_at": T0, **extra,
        "line_items": [
            {"id": f"li-{sku}", "sku": sku, "title": sku, "quantity": quantity, "unit_price": "10",
             "requires_shipping": shipping, "digital_asset_url": None if shipping else "https://files.example/x"}
            for sku, quantity, shipping in lines
        ],
    })  # fmt: skip


def doc(change: Change[RoutingRecord] | None) -> RoutingRecord:
    assert change is not None
    return change.document


def doc_of(change: Change[Document] | None) -> dict[str, Any]:
    """A stored fulfillment order a rule decided."""
    assert change is not None
    return change.document


def summary(routing: RoutingRecord) -> list[tuple[str, str | None, list[tuple[str, int]], list[str]]]:
    return [
        (entry.kind, entry.location_id, [(line.sku, line.quantity) for line in entry.lines],
         [hold.reason for hold in entry.holds])
        for entry in routing.live_entries
    ]  # fmt: skip


def test_paid_order_plan_digital_split_and_out_of_stock() -> None:
    stock = {("A", "MUG"): 2, ("B", "CAP"): 1}
    paid = order([("EBOOK", 1, False), ("MUG", 3, True), ("CAP", 1, True)])
    routing = doc(order_routing.route_paid_order(None, paid, RoutingContext([A, B], stock), T0))
    assert summary(routing) == [
        ("digital", None, [("EBOOK", 1)], []),
        ("shipping", "A", [("MUG", 2)], []),
        ("shipping", "B", [("CAP", 1)], []),
        ("out_of_stock", None, [("MUG", 1)], ["INVENTORY_OUT_OF_STOCK"]),
    ]
    ids = [entry.fulfillment_order_id for entry in routing.entries]
    assert ids == [order_routing.fulfillment_order_id("order-1", i) for i in (1, 2, 3, 4)]
    assert routing.entries[0].auto_fulfill is True  # digital lines always
    assert routing.entries[1].auto_fulfill is False  # the shop is manual


def test_routing_twice_plans_nothing_new() -> None:
    paid = order([("MUG", 1, True)])
    routing = doc(order_routing.route_paid_order(None, paid, RoutingContext([A], {("A", "MUG"): 1}), T0))
    assert order_routing.route_paid_order(routing, paid, RoutingContext([A], {}), T1) is None


def test_automatic_shop_marks_physical_entries_and_keeps_the_location_service() -> None:
    paid = order([("MUG", 1, True)])
    routing = doc(
        order_routing.route_paid_order(None, paid, RoutingContext([THIRD_PARTY], {("C", "MUG"): 1}, True), T0)
    )
    entry = routing.entries[0]
    assert entry.auto_fulfill is True and entry.fulfillment_service == "shipco"


def test_post_purchase_pending_holds_every_entry_until_the_deadline() -> None:
    paid = order([("EBOOK", 1, False), ("MUG", 1, True)], post_purchase_pending=True)
    context = RoutingContext([A], {("A", "MUG"): 1}, post_purchase_hold_seconds=90)
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    assert [holds for *_, holds in summary(routing)] == [["POST_PURCHASE_UPSELL"], ["POST_PURCHASE_UPSELL"]]
    assert routing.entries[1].holds[0].release_at == "2030-01-01T10:01:30.000000+00:00"


def test_post_purchase_completed_routes_the_added_lines_without_a_hold() -> None:
    paid = order([("MUG", 1, True)], post_purchase_pending=True)
    context = RoutingContext([A, B], {("A", "MUG"): 1, ("B", "CAP"): 1})
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    upsold = order([("MUG", 1, True), ("CAP", 1, True)], post_purchase_pending=False)
    after = doc(order_routing.post_purchase_completed(routing, upsold, context, T1))
    assert after.post_purchase_pending is False
    assert summary(after)[1] == ("shipping", "B", [("CAP", 1)], [])
    assert order_routing.post_purchase_completed(after, upsold, context, T1) is None


def test_reroute_after_a_failed_reservation_skips_that_location_and_keeps_holds() -> None:
    paid = order([("MUG", 2, True)])
    context = RoutingContext([A, B], {("A", "MUG"): 2, ("B", "MUG"): 2})
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    fo = fo_rules.create(routing.entries[0], paid, T0).document
    fo = fo_rules.place_hold(fo, HoldReason.OTHER, "call the buyer", T0).document
    fo = fo_rules.set_fulfill_by(fo, "2030-02-01T00:00:00.000000+00:00", T0).document
    failed = doc_of(fo_rules.reservation_failed(fo, "A", "MUG: 0 available", T1))
    after = doc(order_routing.reroute(routing, load(failed), context, T1))
    assert summary(after) == [("shipping", "B", [("MUG", 2)], ["OTHER"])]
    new_entry = after.entries[1]
    assert new_entry.excluded_locations == ("A",)
    assert new_entry.fulfill_by == "2030-02-01T00:00:00.000000+00:00"
    assert after.entries[0].replaced_by == (new_entry.fulfillment_order_id,)
    assert "A excluded after a failed reservation" in new_entry.reason
    assert order_routing.reroute(after, load(failed), context, T1) is None  # re-routed already


def test_reroute_with_nowhere_left_becomes_an_out_of_stock_hold() -> None:
    paid = order([("MUG", 2, True)])
    context = RoutingContext([A], {("A", "MUG"): 2})
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    fo = fo_rules.create(routing.entries[0], paid, T0).document
    failed = doc_of(fo_rules.reservation_failed(fo, "A", "", T1))
    after = doc(order_routing.reroute(routing, load(failed), context, T1))
    assert summary(after) == [("out_of_stock", None, [("MUG", 2)], ["INVENTORY_OUT_OF_STOCK"])]


def test_out_of_stock_hold_rerouted_when_stock_arrives() -> None:
    paid = order([("MUG", 2, True)])
    routing = doc(order_routing.route_paid_order(None, paid, RoutingContext([A], {}), T0))
    held = fo_rules.create(routing.entries[0], paid, T0).document
    replaced = doc_of(fo_rules.replace_out_of_stock(held, T1))
    after = doc(order_routing.reroute(routing, load(replaced), RoutingContext([A], {("A", "MUG"): 5}), T1))
    assert summary(after) == [("shipping", "A", [("MUG", 2)], [])]


def test_reroute_drops_the_post_purchase_hold_once_the_buyer_is_done() -> None:
    paid = order([("MUG", 1, True)], post_purchase_pending=True)
    context = RoutingContext([A, B], {("A", "MUG"): 1, ("B", "MUG"): 1})
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    fo = fo_rules.create(routing.entries[0], paid, T0).document
    done = doc(order_routing.post_purchase_completed(routing, order([("MUG", 1, True)]), context, T1))
    failed = doc_of(fo_rules.reservation_failed(fo, "A", "", T1))
    assert summary(doc(order_routing.reroute(done, load(failed), context, T1))) == [("shipping", "B", [("MUG", 1)], [])]
    still_pending = doc(order_routing.reroute(routing, load(failed), context, T1))
    assert summary(still_pending) == [("shipping", "B", [("MUG", 1)], ["POST_PURCHASE_UPSELL"])]


def test_cancelled_order_plans_nothing_more() -> None:
    paid = order([("MUG", 1, True)])
    context = RoutingContext([A, B], {("A", "MUG"): 1, ("B", "MUG"): 1})
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    cancelled = doc(order_routing.cancel(routing, paid, T1))
    assert cancelled.cancelled is True and cancelled.live_entries == []
    assert order_routing.cancel(cancelled, paid, T1) is None
    fo = fo_rules.create(routing.entries[0], paid, T0).document
    after = doc(
        order_routing.reroute(cancelled, load(doc_of(fo_rules.reservation_failed(fo, "A", "", T1))), context, T1)
    )
    assert len(after.entries) == 1 and after.entries[0].replaced_by == ()


def test_cancelled_before_paid_is_never_routed() -> None:
    paid = order([("MUG", 1, True)])
    cancelled = doc(order_routing.cancel(None, paid, T0))
    assert order_routing.route_paid_order(cancelled, paid, RoutingContext([A], {("A", "MUG"): 1}), T1) is None


def test_materialised_marks_the_revision_once() -> None:
    routing = doc(order_routing.route_paid_order(None, order([("MUG", 1, True)]), RoutingContext([], {}), T0))
    done = doc(order_routing.materialised(routing, routing.revision))
    assert done.materialised_revision == routing.revision
    assert order_routing.materialised(done, routing.revision) is None
    assert order_routing.materialised(routing, routing.revision - 1) is None  # a newer plan came since


# --- the stored shape (services/fulfillment/store.py ROUTING_RECORDS) ------------------------

AS_STORED = Path(__file__).with_name("routing_record_as_stored.json")
"""A plan as the version before the typed routing record stored it: a post-purchase order with a
digital line, a split and a re-route after a failed reservation (the replaced entry kept)."""


def test_a_plan_is_stored_as_before_and_an_earlier_one_loads_and_dumps_unchanged() -> None:
    earlier = json.loads(AS_STORED.read_text())
    assert ROUTING_RECORDS.dump(ROUTING_RECORDS.load(earlier)) == earlier
    paid = order([("EBOOK", 1, False), ("MUG", 3, True), ("CAP", 1, True)], post_purchase_pending=True)
    context = RoutingContext([A, B], {("A", "MUG"): 2, ("B", "CAP"): 1, ("B", "MUG"): 1}, post_purchase_hold_seconds=90)
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    fo = fo_rules.create(routing.entries[1], paid, T0).document
    fo = fo_rules.place_hold(fo, HoldReason.OTHER, "call the buyer", T0).document
    failed = doc_of(fo_rules.reservation_failed(fo, "A", "MUG: 0 available", T1))
    assert ROUTING_RECORDS.dump(doc(order_routing.reroute(routing, load(failed), context, T1))) == earlier


def test_routing_rules_leave_their_argument_as_it_was() -> None:
    paid = order([("MUG", 2, True)])
    context = RoutingContext([A, B], {("A", "MUG"): 2, ("B", "MUG"): 2})
    routing = doc(order_routing.route_paid_order(None, paid, context, T0))
    before = ROUTING_RECORDS.dump(routing)
    failed = doc_of(fo_rules.reservation_failed(fo_rules.create(routing.entries[0], paid, T0).document, "A", "", T1))
    assert order_routing.reroute(routing, load(failed), context, T1) is not None
    assert order_routing.cancel(routing, paid, T1) is not None
    assert ROUTING_RECORDS.dump(routing) == before
