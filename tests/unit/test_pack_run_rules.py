"""The warehouse day's pure rules: a fulfillment order's warehouse status, the pack run's
checks in order (where it stops and why), what fulfillment keeps of an order, the parcel limit,
and an edit of a held order planned again with its hold carried over."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.fulfillment.domain import order_routing, pack_run
from services.fulfillment.domain.fulfillment_orders import lifecycle, packing, shipping
from services.fulfillment.domain.fulfillment_orders.model import (
    FulfillmentOrder,
    FulfillmentRequest,
    InvalidRequest,
    Reservation,
    Status,
)
from services.fulfillment.domain.order_routing import RoutingContext
from services.fulfillment.domain.pack_run import OrderView, Outcome
from shared.catalog import Address, Customer, Hold, HoldReason, Tracking
from tests.unit.test_routing_record import T0, T1, A, doc, order


def a_packable(*lines: tuple[str, int, bool]) -> tuple[OrderView, list[FulfillmentOrder]]:
    paid = order(list(lines))
    routing = doc(order_routing.route_paid_order(None, paid, RoutingContext([A], {("A", "MUG"): 9}), T0))
    fos = [
        replace(lifecycle.create(entry, paid, T0).fo, reservation_status=Reservation.RESERVED)
        for entry in routing.entries
    ]
    return OrderView(order_id=paid.id, order=paid), fos


def test_warehouse_status_packing_is_in_progress_at_a_merchant_managed_location() -> None:
    _, (fo,) = a_packable(("MUG", 1, True))
    assert fo.warehouse_status == "order"
    packed = packing.start_packing(fo, T1)
    assert packed is not None and packed.fo.warehouse_status == "packing"
    assert [event.type for event in packed.events] == ["fulfillment_order.packing_started"]
    assert packing.start_packing(packed.fo, T1) is None  # a second run: nothing to do
    at_a_service = replace(fo, status=Status.IN_PROGRESS, fulfillment_service="shipco")
    assert at_a_service.warehouse_status == "order"
    assert replace(fo, status=Status.CLOSED).warehouse_status == "shipped"
    assert replace(fo, status=Status.CANCELLED).warehouse_status is None


def test_the_pack_run_stops_at_the_first_check_that_fails_in_the_guides_order() -> None:
    view, fos = a_packable(("MUG", 1, True))
    draft = replace(view, order=view.order.model_copy(update={"customer": Customer(email="", name="")}))
    unpaid_waiting = replace(view, order=view.order.model_copy(update={"financial_status": "pending", "waiting": True}))
    waiting = replace(view, order=view.order.model_copy(update={"waiting": True}))
    assert pack_run.decide(draft, fos, {}, [A]).outcome == Outcome.DRAFT
    assert pack_run.decide(unpaid_waiting, fos, {}, [A]).outcome == Outcome.NOT_PAID
    assert pack_run.decide(waiting, fos, {}, [A]).outcome == Outcome.WAITING
    assert pack_run.decide(view, None, {}, [A]).outcome == Outcome.NOT_ROUTED
    pending = [replace(fo, reservation_status=Reservation.PENDING) for fo in fos]
    short = pack_run.decide(view, pending, {("A", "MUG"): 0}, [A])
    assert (short.outcome, short.message) == (Outcome.SHORT, "line MUG short at location A: 1 needed, 0 available")
    assert pack_run.decide(view, pending, {("A", "MUG"): 5}, [A]).outcome == Outcome.NOT_RESERVED
    moved = pack_run.decide(view, fos, {}, [A])
    assert (moved.outcome, moved.to_pack, moved.settled) == (Outcome.MOVED, (fos[0].id,), True)


def test_digital_lines_alone_leave_the_warehouse_nothing_to_pack() -> None:
    view, fos = a_packable(("EBOOK", 1, False))
    assert pack_run.decide(view, fos, {}, [A]).outcome == Outcome.NOTHING_TO_PACK


def test_what_fulfillment_keeps_of_an_order_a_cancelled_one_is_never_packed() -> None:
    view, _ = a_packable(("MUG", 1, True))
    seen = pack_run.order_seen(None, view.order, T0)
    assert seen is not None and seen.document.pack_pending
    settled = replace(seen.document, pack_pending=False)
    edited = pack_run.order_seen(settled, view.order, T1, repack=True)
    assert edited is not None and (edited.document.pack_pending, edited.document.repack_seq) == (True, 1)
    cancelled = pack_run.order_seen(edited.document, view.order, T1, cancelled=True)
    assert cancelled is not None and not cancelled.document.pack_pending
    assert pack_run.order_seen(cancelled.document, view.order, T1, repack=True) is None


def test_a_fifth_parcel_is_refused_naming_the_field() -> None:
    _, (fo,) = a_packable(("MUG", 1, True))
    four = FulfillmentRequest(tracking=Tracking(numbers=["P1", "P2", "P3", "P4"]))
    assert shipping.fulfil(fo, four, T1, max_parcels=4).fo.status == Status.CLOSED
    five = FulfillmentRequest(tracking=Tracking(numbers=["P1", "P2", "P3", "P4", "P5"]), parcels_field="parcels")
    with pytest.raises(InvalidRequest) as refused:
        shipping.fulfil(fo, five, T1, max_parcels=4)
    assert refused.value.field == "parcels" and "at most 4 parcel ids" in refused.value.reason


def test_an_edit_keeps_what_did_not_change_and_carries_the_merchants_hold_to_what_is_planned_again() -> None:
    paid = order([("MUG", 2, True)])
    context = RoutingContext([A], {("A", "MUG"): 0})  # all of it reserved by this order already
    routing = doc(order_routing.route_paid_order(None, paid, RoutingContext([A], {("A", "MUG"): 2}), T0))
    (fo,) = [
        replace(lifecycle.create(e, paid, T0).fo, reservation_status=Reservation.RESERVED) for e in routing.entries
    ]
    fo = replace(fo, holds=(Hold(reason=HoldReason.OTHER, note="call"),), status=Status.ON_HOLD)
    fewer = paid.model_copy(update={"line_items": [paid.line_items[0].model_copy(update={"quantity": 1})]})
    edited = doc(order_routing.edit(routing, fewer, {fo.id: fo}, context, T1))
    (entry,) = edited.live_entries
    assert (entry.location_id, [(line.sku, line.quantity) for line in entry.lines]) == ("A", [("MUG", 1)])
    assert [hold.reason for hold in entry.holds] == [HoldReason.OTHER]
    address_only = paid.model_copy(update={"shipping_address": Address(city="Lund")})
    kept = doc(order_routing.edit(routing, address_only, {fo.id: fo}, context, T1))
    assert kept.entries == routing.entries and kept.order.shipping_address == Address(city="Lund")
