"""Every transition of the fulfillment order, allowed and refused (pure rules, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from services.fulfillment.domain import order_routing
from services.fulfillment.domain.fulfillment_orders import packing, shipping
from services.fulfillment.domain.fulfillment_orders.model import (
    FulfillmentRequest,
    InvalidRequest,
    LineQuantity,
    TransitionRefused,
)
from services.fulfillment.domain.routing import RoutingLocation
from services.fulfillment.store import FULFILLMENT_ORDERS as mapping
from shared.catalog import Customer, HoldReason, LabelStatus, OrderSnapshot, Tracking
from shared.store import Change, Document
from tests import fulfillment_documents as fo_rules
from tests.event_data import data_of

T0 = "2030-01-01T10:00:00.000000+00:00"
T1 = "2030-01-01T10:05:00.000000+00:00"
LATER = "2030-01-02T10:00:00.000000+00:00"
WAREHOUSE = RoutingLocation("wh-1", "Warehouse", priority=1)
STORE = RoutingLocation("store-2", "Store", priority=2)
THIRD_PARTY = RoutingLocation("3pl", "ShipCo", priority=1, fulfillment_service="shipco")


def order(*lines: tuple[str, int, bool], post_purchase_pending: bool = False) -> OrderSnapshot:
    return OrderSnapshot.model_validate({
        "id": "order-1", "customer": {"email": "b@example.com", "name": "B"}, "currency": "SEK",
        "financial_status": "paid", "created_at": T0, "post_purchase_pending": post_purchase_pending,
        "line_items": [
            {"id": f"li-{sku}", "sku": sku, "title": sku, "quantity": quantity, "unit_price": "10",
             "requires_shipping": shipping, "digital_asset_url": None if shipping else f"https://files.example/{sku}"}
            for sku, quantity, shipping in lines
        ],
    })  # fmt: skip


def created(
    *lines: tuple[str, int, bool],
    location: RoutingLocation | None = WAREHOUSE,
    stock: int = 100,
    auto: bool = False,
    post_purchase_pending: bool = False,
) -> Change[Document]:
    """The first fulfillment order routing creates for an order with these lines."""
    snapshot = order(*lines, post_purchase_pending=post_purchase_pending)
    locations = [location] if location else []
    context = order_routing.RoutingContext(
        locations, {(loc.id, sku): stock for loc in locations for sku, _, _ in lines}, auto_fulfill=auto
    )
    routing = order_routing.route_paid_order(None, snapshot, context, T0)
    assert routing is not None
    return fo_rules.create(routing.document.entries[0], snapshot, T0)


def open_fo(*lines: tuple[str, int, bool], location: RoutingLocation = WAREHOUSE, reserved: bool = True) -> Document:
    fo = created(*(lines or (("MUG", 3, True),)), location=location).document
    if reserved:
        fo = apply(fo_rules.reservation_confirmed(fo, location.id, T0))
    return fo


def apply(change: Change[Document] | None) -> Document:
    assert change is not None
    return change.document


def types(change: Change[Document] | None) -> list[str]:
    assert change is not None
    return [event.type for event in change.events]


def ship(fo: Document, lines: list[LineQuantity] | None = None, **kwargs: Any) -> Change[Document]:
    return fo_rules.fulfil(fo, FulfillmentRequest(lines=lines, **kwargs), T1)


# --- creation ----------------------------------------------------------------------------


def test_created_open_at_the_location_waiting_for_the_reservation() -> None:
    change = created(("MUG", 2, True))
    fo = change.document
    assert (fo["status"], fo["location_id"], fo["reservation_status"]) == ("OPEN", "wh-1", "PENDING")
    assert types(change) == ["fulfillment_order.created"]
    event = change.events[0]
    assert event.subject == "order-1"
    assert "highest-priority active location" in data_of(event)["reason"]
    assert data_of(event)["fulfillment_order"]["line_items"][0]["fulfilled_quantity"] == 0
    assert fo["sort_fulfill_by"] == fo_rules.NO_DEADLINE


def test_digital_lines_are_fulfilled_as_soon_as_created() -> None:
    change = created(("EBOOK", 1, False), location=None)
    fo = change.document
    assert types(change) == ["fulfillment_order.created", "fulfillment.created", "fulfillment_order.closed"]
    assert fo["status"] == "CLOSED" and fo["location_id"] is None
    fulfillment = data_of(change.events[1])["fulfillment"]
    assert fulfillment["line_items"][0]["digital_asset_url"] == "https://files.example/EBOOK"
    assert fulfillment["notify_customer"] is True
    assert data_of(change.events[1])["fulfillment_order"]["line_items"][0]["fulfilled_quantity"] == 1


def test_a_drafts_digital_lines_wait_for_its_customer_and_ship_once_it_comes() -> None:
    """Before, a paid draft's digital lines shipped at once and their download links were emailed
    to nobody (no address: failed for good), never again once the draft got its customer."""
    given = order(("EBOOK", 1, False))
    draft = given.model_copy(update={"customer": Customer(email="", name="")})
    routing = order_routing.route_paid_order(None, draft, order_routing.RoutingContext([], {}), T0)
    assert routing is not None
    change = fo_rules.create(routing.document.entries[0], draft, T0)
    assert types(change) == ["fulfillment_order.created"] and change.document["status"] == "OPEN"

    customer_given = fo_rules.on_document(packing.order_updated)(change.document, given, T1)
    assert customer_given is not None
    assert types(customer_given) == ["fulfillment.created", "fulfillment_order.closed"]
    assert data_of(customer_given.events[0])["fulfillment"]["notify_customer"] is True
    assert customer_given.document["order"]["customer"]["email"] == "b@example.com"
    assert fo_rules.on_document(packing.order_updated)(apply(customer_given), given, LATER) is None


def test_out_of_stock_lines_are_created_on_hold_without_a_location() -> None:
    change = created(("MUG", 2, True), stock=0)
    fo = change.document
    assert (fo["status"], fo["location_id"], fo["kind"]) == ("ON_HOLD", None, "out_of_stock")
    assert [hold["reason"] for hold in fo["holds"]] == ["INVENTORY_OUT_OF_STOCK"]
    assert fo["out_of_stock"] is True
    assert fo_rules.is_out_of_stock_hold(fo)
    assert "no active location has stock for 2 x MUG" in data_of(change.events[0])["reason"]


def test_post_purchase_orders_are_created_on_hold_and_digital_lines_wait_too() -> None:
    change = created(("EBOOK", 1, False), location=None, post_purchase_pending=True)
    fo = change.document
    assert fo["status"] == "ON_HOLD" and fo["fulfillments"] == {}
    assert [hold["reason"] for hold in fo["holds"]] == ["POST_PURCHASE_UPSELL"]
    assert fo["upsell_release_at"] == "2030-01-01T11:00:00.000000+00:00"
    assert types(change) == ["fulfillment_order.created"]


def test_tombstone_is_cancelled_and_announced_to_nobody() -> None:
    snapshot = order(("EBOOK", 1, False))
    routing = order_routing.route_paid_order(None, snapshot, order_routing.RoutingContext([], {}), T0)
    assert routing is not None
    change = fo_rules.tombstone(routing.document.entries[0], snapshot, "order cancelled", T0)
    assert change.document["status"] == "CANCELLED" and change.events == []
    assert change.document["fulfillments"] == {}


# --- reservations --------------------------------------------------------------------------


def test_reservation_confirmed_makes_it_fulfillable() -> None:
    fo = created(("MUG", 2, True)).document
    with pytest.raises(TransitionRefused, match="stock is not reserved yet at Warehouse"):
        ship(fo)
    change = fo_rules.reservation_confirmed(fo, "wh-1", T1)
    assert apply(change)["reservation_status"] == "RESERVED" and types(change) == []
    assert fo_rules.reservation_confirmed(apply(change), "wh-1", T1) is None  # already known
    assert fo_rules.reservation_confirmed(fo, "elsewhere", T1) is None  # about another location


def test_reservation_confirmed_fulfils_at_once_when_automatic() -> None:
    fo = created(("MUG", 2, True), auto=True).document
    change = fo_rules.reservation_confirmed(fo, "wh-1", T1)
    assert types(change) == ["fulfillment.created", "fulfillment_order.closed"]
    assert apply(change)["status"] == "CLOSED"


def test_automatic_at_a_fulfillment_service_location_submits_the_request_instead() -> None:
    fo = created(("MUG", 2, True), location=THIRD_PARTY, auto=True).document
    change = fo_rules.reservation_confirmed(fo, "3pl", T1)
    assert types(change) == ["fulfillment_request.submitted", "fulfillment_service.fulfillment_requested"]
    assert change is not None
    assert change.events[1].subject == "shipco"
    after = apply(change)
    assert (after["status"], after["request_status"]) == ("OPEN", "SUBMITTED")
    with pytest.raises(TransitionRefused, match="fulfillment request is SUBMITTED"):
        ship(after)


def test_reservation_failed_gives_way_to_a_reroute() -> None:
    fo = created(("MUG", 2, True)).document
    change = fo_rules.reservation_failed(fo, "wh-1", "MUG: 2 requested, 0 available", T1)
    after = apply(change)
    assert after["status"] == "CANCELLED" and after["reroute_pending"] is True
    assert after["excluded_locations"] == ["wh-1"]
    assert types(change) == ["fulfillment_order.cancelled"]
    assert change is not None and "reservation at Warehouse failed" in data_of(change.events[0])["reason"]
    assert fo_rules.reservation_failed(after, "wh-1", "", T1) is None  # redelivered
    reserved = apply(fo_rules.reservation_confirmed(fo, "wh-1", T1))
    assert fo_rules.reservation_failed(reserved, "wh-1", "", T1) is None  # stale
    assert fo_rules.reroute_recorded(after, ["fo-2"], T1) is not None
    assert fo_rules.reroute_recorded(apply(fo_rules.reroute_recorded(after, ["fo-2"], T1)), [], T1) is None


def test_out_of_stock_hold_gives_way_when_stock_arrives_and_nothing_else_does() -> None:
    held = created(("MUG", 2, True), stock=0).document
    change = fo_rules.replace_out_of_stock(held, T1)
    assert apply(change)["status"] == "CANCELLED" and apply(change)["reroute_pending"] is True
    assert types(change) == ["fulfillment_order.cancelled"]
    assert fo_rules.replace_out_of_stock(apply(change), T1) is None
    assert fo_rules.replace_out_of_stock(open_fo(), T1) is None


# --- fulfilling ----------------------------------------------------------------------------


def test_fulfil_everything_closes_the_fulfillment_order() -> None:
    change = ship(open_fo(), tracking=Tracking(numbers=["TRK1"], company="PostNord"), notify_customer=True)
    fo = change.document
    assert types(change) == ["fulfillment.created", "fulfillment_order.closed"]
    assert fo["status"] == "CLOSED" and fo["line_items"][0]["fulfilled_quantity"] == 3
    fulfillment = data_of(change.events[0])["fulfillment"]
    assert fulfillment["tracking"]["numbers"] == ["TRK1"] and fulfillment["location_id"] == "wh-1"
    assert fulfillment["notify_customer"] is True


def test_partial_fulfilment_leaves_the_rest_open_in_progress() -> None:
    fo = open_fo(("MUG", 3, True), ("CAP", 1, True))
    first = ship(fo, [LineQuantity("li-MUG", 2)])
    after = first.document
    assert after["status"] == "IN_PROGRESS" and types(first) == ["fulfillment.created"]
    assert [line["fulfilled_quantity"] for line in after["line_items"]] == [2, 0]
    second = ship(after, tracking=Tracking(numbers=["A", "B"]))
    assert second.document["status"] == "CLOSED"
    assert [line["quantity"] for line in data_of(second.events[0])["fulfillment"]["line_items"]] == [1, 1]
    assert len(second.document["fulfillments"]) == 2


@pytest.mark.parametrize(
    ("lines", "field", "reason"),
    [
        ([LineQuantity("nope", 1)], "line_items.0.line_item_id", "not a line of this fulfillment order"),
        ([LineQuantity("li-MUG", 4)], "line_items.0.quantity", "between 1 and 3"),
        ([LineQuantity("li-MUG", 0)], "line_items.0.quantity", "between 1 and 3"),
        ([LineQuantity("li-MUG", 1), LineQuantity("li-MUG", 1)], "line_items.1.line_item_id", "listed twice"),
        ([], "line_items", "at least one line"),
    ],
)
def test_fulfil_refuses_lines_that_cannot_be(lines: list[LineQuantity], field: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason) as refused:
        ship(open_fo(), lines)
    assert refused.value.field == field


def test_fulfil_more_than_remains_after_a_partial_is_refused() -> None:
    after = ship(open_fo(), [LineQuantity("li-MUG", 2)]).document
    with pytest.raises(InvalidRequest, match="between 1 and 1"):
        ship(after, [LineQuantity("li-MUG", 2)])


def test_fulfil_refused_when_on_hold_scheduled_closed_or_cancelled() -> None:
    held = fo_rules.place_hold(open_fo(), HoldReason.HIGH_RISK_OF_FRAUD, "check", T1).document
    with pytest.raises(TransitionRefused, match=r"ON_HOLD \(HIGH_RISK_OF_FRAUD\): release the hold first"):
        ship(held)
    scheduled = fo_rules.schedule(open_fo(), LATER, T1).document
    with pytest.raises(TransitionRefused, match="SCHEDULED: it opens at"):
        ship(scheduled)
    closed = ship(open_fo()).document
    with pytest.raises(TransitionRefused, match="CLOSED: every line is already fulfilled"):
        ship(closed)
    cancelled = apply(fo_rules.cancel(open_fo(), "order cancelled", T1))
    with pytest.raises(TransitionRefused, match="CANCELLED cannot be fulfilled"):
        ship(cancelled)


def test_tracking_is_added_or_changed_after_the_fact() -> None:
    fo = ship(open_fo(), [LineQuantity("li-MUG", 1)]).document
    fulfillment_id = next(iter(fo["fulfillments"]))
    tracking = Tracking(numbers=["NEW1", "NEW2"], company="DHL", urls=["https://dhl.example/NEW1"])
    change = fo_rules.update_tracking(fo, fulfillment_id, tracking, True, T1)
    assert types(change) == ["fulfillment.tracking_updated"]
    data = data_of(change.events[0])["fulfillment"]
    assert data["tracking"] == {"numbers": ["NEW1", "NEW2"], "company": "DHL", "urls": ["https://dhl.example/NEW1"]}
    assert data["notify_customer"] is True


def test_cancel_fulfillment_returns_lines_to_unfulfilled_and_reopens() -> None:
    fo = ship(open_fo()).document
    fulfillment_id = next(iter(fo["fulfillments"]))
    change = fo_rules.cancel_fulfillment(fo, fulfillment_id, T1)
    after = change.document
    assert types(change) == ["fulfillment.cancelled"]
    assert after["status"] == "OPEN" and after["line_items"][0]["fulfilled_quantity"] == 0
    assert after["fulfillments"][fulfillment_id]["status"] == "CANCELLED"
    assert after["reservation_status"] == "RESERVED"  # inventory puts the stock back to reserved
    with pytest.raises(TransitionRefused, match="already cancelled"):
        fo_rules.cancel_fulfillment(after, fulfillment_id, T1)
    with pytest.raises(TransitionRefused, match="tracking can no longer change"):
        fo_rules.update_tracking(after, fulfillment_id, Tracking(), False, T1)
    assert ship(after).document["status"] == "CLOSED"  # can ship again


def test_cancel_one_of_two_shipments_keeps_it_in_progress() -> None:
    fo = ship(open_fo(), [LineQuantity("li-MUG", 1)]).document
    fo = ship(fo).document
    second = list(fo["fulfillments"])[1]
    after = fo_rules.cancel_fulfillment(fo, second, T1).document
    assert after["status"] == "IN_PROGRESS" and after["line_items"][0]["fulfilled_quantity"] == 1


def test_purchased_label_must_be_voided_before_the_fulfillment_is_cancelled() -> None:
    fo = ship(open_fo(), label=LabelStatus.PURCHASED).document
    fulfillment_id = next(iter(fo["fulfillments"]))
    with pytest.raises(TransitionRefused, match="void the label before cancelling"):
        fo_rules.cancel_fulfillment(fo, fulfillment_id, T1)
    voided = fo_rules.void_label(fo, fulfillment_id, T1)
    assert types(voided) == ["fulfillment.label_voided"]
    assert voided.document["fulfillments"][fulfillment_id]["label_status"] == "VOIDED"
    with pytest.raises(TransitionRefused, match="no purchased shipping label to void"):
        fo_rules.void_label(voided.document, fulfillment_id, T1)
    assert fo_rules.cancel_fulfillment(voided.document, fulfillment_id, T1).document["status"] == "OPEN"


def test_fulfillment_of_a_cancelled_fulfillment_order_stays() -> None:
    fo = ship(open_fo(), [LineQuantity("li-MUG", 1)]).document
    fulfillment_id = next(iter(fo["fulfillments"]))
    cancelled = apply(fo_rules.cancel(fo, "order cancelled", T1))
    with pytest.raises(TransitionRefused, match="fulfillment order is cancelled"):
        fo_rules.cancel_fulfillment(cancelled, fulfillment_id, T1)


def test_unknown_fulfillment_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        fo_rules.void_label(open_fo(), "nope", T1)


# --- holds ---------------------------------------------------------------------------------


def test_hold_and_release_the_whole_fulfillment_order() -> None:
    change = fo_rules.place_hold(open_fo(), HoldReason.INCORRECT_ADDRESS, "wrong zip", T1)
    held = change.document
    assert held["status"] == "ON_HOLD" and types(change) == ["fulfillment_order.placed_on_hold"]
    assert held["holds"] == [{"reason": "INCORRECT_ADDRESS", "note": "wrong zip", "held_at": T1}]
    assert change.events[0].data["reason"] == "INCORRECT_ADDRESS: wrong zip"
    released = fo_rules.release_hold(held, T1)
    assert released.document["status"] == "OPEN" and released.document["holds"] == []
    assert types(released) == ["fulfillment_order.hold_released"]


def test_hold_on_a_partly_shipped_order_releases_to_in_progress() -> None:
    fo = ship(open_fo(), [LineQuantity("li-MUG", 1)]).document
    held = fo_rules.place_hold(fo, HoldReason.OTHER, "", T1).document
    assert fo_rules.release_hold(held, T1).document["status"] == "IN_PROGRESS"


def test_two_holds_need_two_releases_or_one_release_of_all() -> None:
    held = fo_rules.place_hold(open_fo(), HoldReason.OTHER, "a", T1).document
    held = fo_rules.place_hold(held, HoldReason.HIGH_RISK_OF_FRAUD, "b", T1).document
    partly = fo_rules.release_hold(held, T1, HoldReason.OTHER).document
    assert partly["status"] == "ON_HOLD" and [h["reason"] for h in partly["holds"]] == ["HIGH_RISK_OF_FRAUD"]
    assert fo_rules.release_hold(held, T1).document["status"] == "OPEN"
    with pytest.raises(TransitionRefused, match="not on hold for OTHER"):
        fo_rules.release_hold(partly, T1, HoldReason.OTHER)


def test_hold_refusals() -> None:
    held = fo_rules.place_hold(open_fo(), HoldReason.OTHER, "", T1).document
    with pytest.raises(TransitionRefused, match="already on hold for OTHER"):
        fo_rules.place_hold(held, HoldReason.OTHER, "", T1)
    with pytest.raises(InvalidRequest, match="placed by the platform") as invalid:
        fo_rules.place_hold(open_fo(), HoldReason.POST_PURCHASE_UPSELL, "", T1)
    assert invalid.value.field == "reason"
    for status_doc in (ship(open_fo()).document, apply(fo_rules.cancel(open_fo(), "x", T1)),
                       fo_rules.schedule(open_fo(), LATER, T1).document):  # fmt: skip
        with pytest.raises(TransitionRefused, match="cannot be put on hold"):
            fo_rules.place_hold(status_doc, HoldReason.OTHER, "", T1)
    submitted = fo_rules.submit_request(open_fo(location=THIRD_PARTY), T1).document
    with pytest.raises(TransitionRefused, match="SUBMITTED at shipco"):
        fo_rules.place_hold(submitted, HoldReason.OTHER, "", T1)
    with pytest.raises(TransitionRefused, match="OPEN, not on hold"):
        fo_rules.release_hold(open_fo(), T1)


def test_platform_holds_are_not_released_by_the_merchant() -> None:
    out_of_stock = created(("MUG", 2, True), stock=0).document
    with pytest.raises(TransitionRefused, match="which the platform releases"):
        fo_rules.release_hold(out_of_stock, T1)
    upsell = created(("MUG", 2, True), post_purchase_pending=True).document
    with pytest.raises(TransitionRefused, match="which the platform releases"):
        fo_rules.release_hold(upsell, T1)


def test_a_merchant_out_of_stock_hold_at_a_location_is_released_normally() -> None:
    held = fo_rules.place_hold(open_fo(), HoldReason.INVENTORY_OUT_OF_STOCK, "recount", T1).document
    assert not fo_rules.is_out_of_stock_hold(held)
    assert fo_rules.release_hold(held, T1).document["status"] == "OPEN"


def test_post_purchase_hold_released_when_the_buyer_is_done() -> None:
    held = created(("MUG", 2, True), post_purchase_pending=True).document
    assert held["reservation_status"] == "PENDING"  # stock is reserved all the same
    change = fo_rules.release_post_purchase_hold(held, T1, expired_only=False)
    assert apply(change)["status"] == "OPEN" and apply(change)["upsell_release_at"] is None
    assert change is not None and change.events[0].data["reason"] == "the buyer finished the post-purchase offer"
    assert fo_rules.release_post_purchase_hold(apply(change), T1, expired_only=False) is None


def test_post_purchase_hold_released_by_the_sweep_only_once_expired() -> None:
    held = created(("MUG", 2, True), post_purchase_pending=True).document
    assert fo_rules.release_post_purchase_hold(held, T1, expired_only=True) is None
    expired = fo_rules.release_post_purchase_hold(held, "2030-01-01T11:00:00.000000+00:00", expired_only=True)
    assert apply(expired)["status"] == "OPEN"
    assert expired is not None and expired.events[0].data["reason"] == "the post-purchase hold expired"


def test_released_post_purchase_hold_fulfils_digital_lines_at_once() -> None:
    held = created(("EBOOK", 1, False), location=None, post_purchase_pending=True).document
    change = fo_rules.release_post_purchase_hold(held, T1, expired_only=False)
    assert types(change) == ["fulfillment_order.hold_released", "fulfillment.created", "fulfillment_order.closed"]


def test_post_purchase_release_keeps_other_holds() -> None:
    held = created(("MUG", 2, True), post_purchase_pending=True).document
    held = fo_rules.place_hold(held, HoldReason.OTHER, "", T1).document
    after = apply(fo_rules.release_post_purchase_hold(held, T1, expired_only=False))
    assert after["status"] == "ON_HOLD" and [h["reason"] for h in after["holds"]] == ["OTHER"]


# --- where and when ------------------------------------------------------------------------


def test_move_to_another_location_with_stock() -> None:
    change = fo_rules.move(open_fo(), STORE, {"MUG": 3}, T1)
    fo = change.document
    assert types(change) == ["fulfillment_order.moved"]
    assert change.events[0].data["previous_location_id"] == "wh-1"
    assert (fo["location_id"], fo["reservation_status"]) == ("store-2", "PENDING")
    assert "moved by the merchant from wh-1 to Store (priority 2)" in data_of(change.events[0])["reason"]


def test_move_refusals() -> None:
    with pytest.raises(TransitionRefused, match="does not have the stock: MUG \\(2 available, 3 needed\\)"):
        fo_rules.move(open_fo(), STORE, {"MUG": 2}, T1)
    with pytest.raises(TransitionRefused, match="already at wh-1"):
        fo_rules.move(open_fo(), WAREHOUSE, {"MUG": 9}, T1)
    with pytest.raises(TransitionRefused, match="not active"):
        fo_rules.move(open_fo(), RoutingLocation("x", "X", 3, active=False), {"MUG": 9}, T1)
    held = fo_rules.place_hold(open_fo(), HoldReason.OTHER, "", T1).document
    with pytest.raises(TransitionRefused, match="ON_HOLD: release the hold first"):
        fo_rules.move(held, STORE, {"MUG": 9}, T1)
    partly = ship(open_fo(), [LineQuantity("li-MUG", 1)]).document
    with pytest.raises(TransitionRefused, match="IN_PROGRESS: part of it has already shipped"):
        fo_rules.move(partly, STORE, {"MUG": 9}, T1)
    digital = fo_rules.cancel_fulfillment(
        d := created(("EBOOK", 1, False), location=None).document, next(iter(d["fulfillments"])), T1
    ).document
    with pytest.raises(TransitionRefused, match="needs no location"):
        fo_rules.move(digital, STORE, {"EBOOK": 9}, T1)
    submitted = fo_rules.submit_request(open_fo(location=THIRD_PARTY), T1).document
    with pytest.raises(TransitionRefused, match="request is SUBMITTED"):
        fo_rules.move(submitted, STORE, {"MUG": 9}, T1)


def test_fulfill_by_set_changed_cleared_and_sorted_last_when_none() -> None:
    change = fo_rules.set_fulfill_by(open_fo(), LATER, T1)
    assert change.document["fulfill_by"] == LATER and change.document["sort_fulfill_by"] == LATER
    assert types(change) == ["fulfillment_order.fulfill_by_changed"]
    cleared = fo_rules.set_fulfill_by(change.document, None, T1).document
    assert cleared["fulfill_by"] is None and cleared["sort_fulfill_by"] == fo_rules.NO_DEADLINE
    with pytest.raises(TransitionRefused, match="CLOSED: its deadline no longer matters"):
        fo_rules.set_fulfill_by(ship(open_fo()).document, LATER, T1)


def test_schedule_and_the_sweep_opens_it_when_due() -> None:
    change = fo_rules.schedule(open_fo(), LATER, T1)
    scheduled = change.document
    assert scheduled["status"] == "SCHEDULED" and types(change) == ["fulfillment_order.scheduled"]
    assert fo_rules.open_scheduled(scheduled, T1, due_only=True) is None  # not yet
    opened = fo_rules.open_scheduled(scheduled, LATER, due_only=True)
    assert apply(opened)["status"] == "OPEN" and types(opened) == ["fulfillment_order.opened"]
    assert fo_rules.open_scheduled(apply(opened), LATER, due_only=True) is None  # a second sweep: nothing


def test_open_a_scheduled_fulfillment_order_early() -> None:
    scheduled = fo_rules.schedule(open_fo(), LATER, T1).document
    opened = apply(fo_rules.open_scheduled(scheduled, T1, due_only=False))
    assert opened["status"] == "OPEN" and opened["fulfill_at"] == T1
    with pytest.raises(TransitionRefused, match="OPEN, not SCHEDULED"):
        fo_rules.open_scheduled(opened, T1, due_only=False)


def test_schedule_refusals() -> None:
    with pytest.raises(InvalidRequest, match="must be in the future"):
        fo_rules.schedule(open_fo(), T0, T1)
    partly = ship(open_fo(), [LineQuantity("li-MUG", 1)]).document
    with pytest.raises(TransitionRefused, match="nothing shipped can be scheduled"):
        fo_rules.schedule(partly, LATER, T1)


def test_scheduled_opening_fulfils_when_automatic() -> None:
    fo = created(("MUG", 2, True), auto=False).document
    fo = {**apply(fo_rules.reservation_confirmed(fo, "wh-1", T0)), "auto_fulfill": True}
    scheduled = fo_rules.schedule(fo, LATER, T1).document
    opened = fo_rules.open_scheduled(scheduled, LATER, due_only=True)
    assert types(opened) == ["fulfillment_order.opened", "fulfillment.created", "fulfillment_order.closed"]


def test_submit_request_by_hand_and_refusals() -> None:
    change = fo_rules.submit_request(open_fo(location=THIRD_PARTY), T1, "please")
    assert change.document["request_status"] == "SUBMITTED"
    assert change.events[0].data["message"] == "please"
    with pytest.raises(TransitionRefused, match="already SUBMITTED"):
        fo_rules.submit_request(change.document, T1)
    with pytest.raises(TransitionRefused, match="not run by a fulfillment service"):
        fo_rules.submit_request(open_fo(), T1)
    with pytest.raises(TransitionRefused, match="stock is not reserved yet"):
        fo_rules.submit_request(open_fo(location=THIRD_PARTY, reserved=False), T1)


# --- cancellation --------------------------------------------------------------------------


def test_cancel_an_open_one_and_leave_closed_ones_alone() -> None:
    change = fo_rules.cancel(open_fo(), "order cancelled: customer", T1)
    assert apply(change)["status"] == "CANCELLED" and types(change) == ["fulfillment_order.cancelled"]
    assert apply(change)["cancel_reason"] == "order cancelled: customer"
    assert fo_rules.cancel(apply(change), "again", T1) is None
    assert fo_rules.cancel(ship(open_fo()).document, "late", T1) is None


def test_remaining_lines() -> None:
    fo = ship(open_fo(("MUG", 3, True), ("CAP", 1, True)), [LineQuantity("li-MUG", 1), LineQuantity("li-CAP", 1)])
    assert [(line["sku"], line["quantity"]) for line in fo_rules.remaining_lines(fo.document)] == [("MUG", 2)]


# --- the whole table: every action in every status -----------------------------------------


def in_status(status: str) -> Document:
    fo = open_fo()
    if status == "SCHEDULED":
        return fo_rules.schedule(fo, LATER, T1).document
    if status == "ON_HOLD":
        return fo_rules.place_hold(fo, HoldReason.OTHER, "", T1).document
    if status == "IN_PROGRESS":
        return ship(fo, [LineQuantity("li-MUG", 1)]).document
    if status == "CLOSED":
        return ship(fo).document
    if status == "CANCELLED":
        return apply(fo_rules.cancel(fo, "order cancelled", T1))
    return fo


ACTIONS: dict[str, Any] = {
    "fulfil": lambda fo: ship(fo, [LineQuantity("li-MUG", 1)]),
    "hold": lambda fo: fo_rules.place_hold(fo, HoldReason.HIGH_RISK_OF_FRAUD, "", T1),
    "release": lambda fo: fo_rules.release_hold(fo, T1),
    "move": lambda fo: fo_rules.move(fo, STORE, {"MUG": 9}, T1),
    "fulfill_by": lambda fo: fo_rules.set_fulfill_by(fo, LATER, T1),
    "schedule": lambda fo: fo_rules.schedule(fo, LATER, T1),
    "open": lambda fo: fo_rules.open_scheduled(fo, T1, due_only=False),
    "cancel": lambda fo: fo_rules.cancel(fo, "order cancelled", T1),
}
STATUSES = ["OPEN", "SCHEDULED", "ON_HOLD", "IN_PROGRESS", "CLOSED", "CANCELLED"]
# ok: allowed; 409: refused with the reason; -: nothing to do (a replay), no event
TABLE = {
    "fulfil":     ["ok",  "409", "409", "ok",  "409", "409"],
    "hold":       ["ok",  "409", "ok",  "ok",  "409", "409"],
    "release":    ["409", "409", "ok",  "409", "409", "409"],
    "move":       ["ok",  "409", "409", "409", "409", "409"],
    "fulfill_by": ["ok",  "ok",  "ok",  "ok",  "409", "409"],
    "schedule":   ["ok",  "ok",  "409", "409", "409", "409"],
    "open":       ["409", "ok",  "409", "409", "409", "409"],
    "cancel":     ["ok",  "ok",  "ok",  "ok",  "-",   "-"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [(action, status, TABLE[action][i]) for action in ACTIONS for i, status in enumerate(STATUSES)],
)
def test_every_action_in_every_status(action: str, status: str, expected: str) -> None:
    fo = in_status(status)
    assert fo["status"] == status
    if expected == "409":
        with pytest.raises(TransitionRefused) as refused:
            ACTIONS[action](fo)
        assert str(refused.value)  # always says why
    elif expected == "-":
        assert ACTIONS[action](fo) is None
    else:
        change = ACTIONS[action](fo)
        assert change is not None and change.events, "an allowed transition is announced"


# --- the stored shape (services/fulfillment/store.py) --------------------------------------


def test_a_stored_fulfillment_order_loads_and_dumps_to_the_same_document() -> None:
    """Stored data is a public contract: the typed model reads and writes the same fields and
    formats, the platform's holds with `release_at` and the merchant's without, as ever."""
    held = created(("EBOOK", 1, False), ("MUG", 2, True), location=None, post_purchase_pending=True).document
    shipped = ship(open_fo(("MUG", 3, True)), [LineQuantity("li-MUG", 1)], tracking=Tracking(numbers=["T1"]))
    for doc in (held, shipped.document, open_fo()):
        assert mapping.dump(mapping.load(doc)) == doc
    placed = fo_rules.place_hold(open_fo(), HoldReason.OTHER, "call", T1).document
    assert placed["holds"] == [{"reason": "OTHER", "note": "call", "held_at": T1}]
    assert "release_at" in held["holds"][0]


def test_rules_leave_the_fulfillment_order_they_are_given_as_it_was() -> None:
    """Rules return new values: the one given (and its lines) is unchanged after a shipment."""
    fo = mapping.load(open_fo(("MUG", 3, True)))
    before = mapping.dump(fo)
    change = shipping.fulfil(fo, FulfillmentRequest(lines=[LineQuantity("li-MUG", 1)]), T1)
    assert mapping.dump(fo) == before and change.fo.line_items[0].fulfilled_quantity == 1
    assert fo.line_items[0].fulfilled_quantity == 0
