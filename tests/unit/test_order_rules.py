"""The order's rules: placing, paying, cancelling, post-purchase, and what fulfillment tells it."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from services.orders import domain
from services.orders.application import WrittenSnapshots
from services.orders.domain import CancelReason, NewOrder, Order, OrderRuleViolation, Refund, TimelineEntry
from services.orders.handlers import FULFILLMENT_ORDER_EVENTS
from shared.aggregates import Change
from shared.catalog import (
    CATALOG,
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    OrderCancelled,
    OrderFulfillmentStatusChanged,
)
from shared.events import CloudEvent, acting_as, new_event
from tests.event_data import data_of

NOW = "2025-05-01T10:00:00.000000+00:00"
LATER = "2025-05-01T11:00:00.000000+00:00"


def order_json(**changes: Any) -> dict[str, Any]:
    """An order as a merchant sends it."""
    request: dict[str, Any] = {
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"},
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "country_code": "SE"},
        "currency": "SEK",
        "financial_status": "pending",
        "post_purchase_pending": False,
        "line_items": [{"sku": "MUG-1", "title": "Mug", "quantity": 2, "unit_price": "99.50",
                        "requires_shipping": True, "digital_asset_url": None}],
    }  # fmt: skip
    request.update(changes)
    return request


def order_request(**changes: Any) -> NewOrder:
    """An order as the domain gets it."""
    return NewOrder.model_validate(order_json(**changes))


def digital_line(**changes: Any) -> dict[str, Any]:
    line = {"sku": "EBOOK", "title": "E-book", "quantity": 1, "unit_price": "10",
            "requires_shipping": False, "digital_asset_url": "https://files.example.com/ebook.pdf"}  # fmt: skip
    return {**line, **changes}


def announced(request: NewOrder, now: str, number: int = 1001) -> Change[Order]:
    """An order as placed and numbered: what the orders service announces."""
    change = domain.number(domain.place(request, now).document, number, now)
    assert change is not None
    return change


def placed(**changes: Any) -> Order:
    return announced(order_request(**changes), NOW).document


def cancel(order: Order, refund: Refund = Refund.NOW, **kw: Any) -> Any:
    args: dict[str, Any] = {"restock": True, "notify_customer": True, "reason": CancelReason.CUSTOMER, "now": LATER}
    return domain.cancel(order, refund=refund, **{**args, **kw})


def fulfillment_event(order: Order, event_type: str = "fulfillment_order.created", **snapshot: Any) -> CloudEvent:
    fo: dict[str, Any] = {
        "id": "fo-1", "order_id": order.id, "location_id": "loc-1", "status": "OPEN",
        "line_items": [{"line_item_id": line.id, "sku": line.sku, "quantity": line.quantity}
                       for line in order.line_items],
        "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    fo.update(snapshot)
    return new_event(
        "fulfillment", event_type, order.id, FulfillmentOrderChanged.model_validate({"fulfillment_order": fo})
    )


def carried(event: CloudEvent) -> FulfillmentOrderSnapshot | None:
    """The fulfillment order a fulfillment event carries, as the handler gets it (None: none)."""
    return FulfillmentOrderChanged.model_validate(event.data).fulfillment_order if event.data else None


def record(order: Order, event: CloudEvent, now: str = LATER) -> Change[Order]:
    return domain.record_fulfillment_order(order, event, carried(event), now)


def as_stored(snapshot: FulfillmentOrderSnapshot) -> dict[str, Any]:
    return snapshot.model_dump(mode="json")


def fully_fulfilled(order: Order) -> Order:
    lines = [{"line_item_id": line.id, "sku": line.sku, "quantity": line.quantity,
              "fulfilled_quantity": line.quantity} for line in order.line_items]  # fmt: skip
    event = fulfillment_event(order, "fulfillment_order.closed", status="CLOSED", line_items=lines, updated_at=LATER)
    return record(order, event).document


# --- placing ----------------------------------------------------------------------------


def test_a_pending_order_is_announced_as_created() -> None:
    change = announced(order_request(), NOW)
    assert [e.type for e in change.events] == ["order.created"]
    order = change.document
    assert order.financial_status == "pending" and order.fulfillment_status == "UNFULFILLED"
    assert order.line_items[0].id and order.created_at == NOW
    assert order.fulfill_by is None
    assert [entry.type for entry in order.timeline] == ["order.created"]


def test_an_order_placed_paid_is_announced_created_then_paid() -> None:
    change = announced(order_request(financial_status="paid"), NOW)
    assert [e.type for e in change.events] == ["order.created", "order.paid"]
    assert data_of(change.events[1])["order"]["financial_status"] == "paid"
    assert change.document.paid_at == NOW


def test_events_carry_the_full_order_snapshot() -> None:
    event = announced(order_request(), NOW).events[0]
    order = data_of(event)["order"]
    assert order["customer"]["email"] == "buyer@example.com"
    assert order["line_items"][0]["unit_price"] == "99.50"
    assert order["shipping_address"]["city"] == "Stockholm"


def test_a_digital_line_needs_an_asset_and_no_shipping() -> None:
    assert domain.check_new_order(order_request(line_items=[digital_line()], shipping_address=None)) == []
    shipped_asset = order_request(line_items=[digital_line(requires_shipping=True)])
    assert domain.check_new_order(shipped_asset) == [
        domain.Problem("line_items.0.requires_shipping",
                       "a line with a digital_asset_url is digital and must have requires_shipping false")
    ]  # fmt: skip
    no_asset = order_request(line_items=[digital_line(digital_asset_url=None)], shipping_address=None)
    assert [p.field for p in domain.check_new_order(no_asset)] == ["line_items.0.digital_asset_url"]


def test_a_line_that_ships_needs_an_address_to_ship_to() -> None:
    assert [p.field for p in domain.check_new_order(order_request(shipping_address=None))] == ["shipping_address"]
    partial = order_request(shipping_address={"address1": "Storgatan 1", "city": None})
    assert [p.field for p in domain.check_new_order(partial)] == [
        "shipping_address.city",
        "shipping_address.country_code",
    ]


def test_the_currency_must_be_a_real_iso_4217_code() -> None:
    problems = domain.check_new_order(order_request(currency="SKR"))
    assert problems == [domain.Problem("currency", "'SKR' is not an ISO 4217 currency code")]
    assert domain.check_new_order(order_request(currency="EUR")) == []


def test_placing_an_invalid_order_raises_with_every_problem() -> None:
    with pytest.raises(domain.InvalidOrder) as raised:
        announced(order_request(currency="XXX", shipping_address=None), NOW)
    assert [p.field for p in raised.value.problems] == ["currency", "shipping_address"]


# --- paying ------------------------------------------------------------------------------


def test_paying_a_pending_order_emits_order_paid_with_the_snapshot() -> None:
    change = domain.pay(placed(), LATER)
    assert change is not None
    assert [e.type for e in change.events] == ["order.paid"]
    assert data_of(change.events[0])["order"]["financial_status"] == "paid"
    assert change.document.paid_at == LATER
    assert change.document.timeline[-1].type == "order.paid"


def test_paying_twice_is_a_no_op() -> None:
    assert domain.pay(placed(financial_status="paid"), LATER) is None


def test_a_cancelled_order_cannot_be_paid() -> None:
    for order in (cancel(placed()).document, cancel(placed(financial_status="paid"), Refund.LATER).document):
        with pytest.raises(OrderRuleViolation, match="cancelled"):
            domain.pay(order, LATER)


# --- cancelling ----------------------------------------------------------------------------


def cancelled_event(change: Any) -> OrderCancelled:
    assert [e.type for e in change.events] == ["order.cancelled"]
    payload = change.events[0].payload()
    assert isinstance(payload, OrderCancelled)
    return payload


def test_cancelling_a_paid_order_with_refund_now_refunds_it() -> None:
    change = cancel(placed(financial_status="paid"), Refund.NOW, reason=CancelReason.FRAUD, restock=False)
    assert change.document.financial_status == "refunded"
    assert change.document.cancelled_at == LATER and change.document.cancel_reason == "fraud"
    event = cancelled_event(change)
    assert event.refunded is True and event.refund == "now"
    assert event.restock is False and event.notify_customer is True and event.reason == "fraud"
    assert event.order.financial_status == "refunded" and event.order.cancelled_at == LATER


@pytest.mark.parametrize("refund", [Refund.LATER, Refund.NONE])
def test_cancelling_a_paid_order_without_refund_now_leaves_it_paid(refund: Refund) -> None:
    change = cancel(placed(financial_status="paid"), refund)
    assert change.document.financial_status == "paid"
    event = cancelled_event(change)
    assert event.refunded is False and event.refund == refund.value


@pytest.mark.parametrize("refund", list(Refund))
def test_cancelling_an_unpaid_order_voids_it_without_refund(refund: Refund) -> None:
    change = cancel(placed(), refund)
    assert change.document.financial_status == "voided"
    event = cancelled_event(change)
    assert event.refunded is False and event.refund == refund.value


def test_cancelling_twice_is_a_conflict() -> None:
    order = cancel(placed()).document
    with pytest.raises(OrderRuleViolation, match="already cancelled"):
        cancel(order)


def test_a_fully_fulfilled_order_cannot_be_cancelled() -> None:
    order = fully_fulfilled(placed(financial_status="paid"))
    assert order.fulfillment_status == "FULFILLED"
    with pytest.raises(OrderRuleViolation, match="fully fulfilled"):
        cancel(order)


def test_a_partially_fulfilled_order_can_be_cancelled() -> None:
    order = placed(financial_status="paid")
    line = order.line_items[0]
    partial = [{"line_item_id": line.id, "sku": line.sku, "quantity": 2, "fulfilled_quantity": 1}]
    order = record(order, fulfillment_event(order, line_items=partial)).document
    assert order.fulfillment_status == "PARTIALLY_FULFILLED"
    assert cancel(order).document.cancelled_at == LATER


def test_rules_do_not_mutate_the_order_they_are_given() -> None:
    order = placed(financial_status="paid", post_purchase_pending=True)
    before = copy.deepcopy(order)
    cancel(order)
    domain.complete_post_purchase(order, LATER)
    record(order, fulfillment_event(order))
    assert order == before


# --- post-purchase ---------------------------------------------------------------------------


def test_completing_the_post_purchase_window_clears_it_and_says_so() -> None:
    change = domain.complete_post_purchase(placed(post_purchase_pending=True), LATER)
    assert change.document.post_purchase_pending is False
    assert [e.type for e in change.events] == ["order.post_purchase_completed"]
    assert data_of(change.events[0])["order"]["post_purchase_pending"] is False


def test_completing_post_purchase_when_none_is_pending_is_a_conflict() -> None:
    with pytest.raises(OrderRuleViolation, match="no post-purchase offer pending"):
        domain.complete_post_purchase(placed(), LATER)
    with pytest.raises(OrderRuleViolation, match="cancelled"):
        domain.complete_post_purchase(cancel(placed(post_purchase_pending=True)).document, LATER)


# --- what fulfillment tells the order -----------------------------------------------------------


def test_a_fulfillment_order_event_updates_status_deadline_and_timeline() -> None:
    order = placed(financial_status="paid")
    event = fulfillment_event(order, fulfill_by="2025-05-03T00:00:00Z")
    change = record(order, event)
    updated = change.document
    assert updated.fulfillment_orders["fo-1"].status == "OPEN"
    assert updated.fulfill_by == "2025-05-03T00:00:00.000000+00:00"
    assert [entry.type for entry in updated.timeline][-1] == "fulfillment_order.created"
    assert updated.timeline[-1].event_id == event.id
    assert change.events == []  # still UNFULFILLED: nothing to announce


def test_a_status_change_is_announced_and_on_the_timeline() -> None:
    change_order = placed(financial_status="paid")
    change = record(change_order, fulfillment_event(change_order, status="ON_HOLD",
                                                    holds=[{"reason": "HIGH_RISK_OF_FRAUD"}]))  # fmt: skip
    assert [e.type for e in change.events] == ["order.fulfillment_status_changed"]
    payload = change.events[0].payload()
    assert isinstance(payload, OrderFulfillmentStatusChanged) and payload.fulfillment_status == "ON_HOLD"
    assert [entry.type for entry in change.document.timeline][-2:] == [
        "fulfillment_order.created",
        "order.fulfillment_status_changed",
    ]


def test_a_closed_fulfillment_order_no_longer_sets_the_deadline() -> None:
    order = placed(financial_status="paid")
    order = record(order, fulfillment_event(order, fulfill_by="2025-05-03T00:00:00Z"), NOW).document
    assert order.fulfill_by is not None
    closed = fulfillment_event(order, "fulfillment_order.cancelled", status="CANCELLED", updated_at=LATER)
    order = record(order, closed).document
    assert order.fulfill_by is None


def test_an_older_snapshot_arriving_late_does_not_undo_a_newer_one() -> None:
    order = fully_fulfilled(placed(financial_status="paid"))
    stale = fulfillment_event(order, "fulfillment_order.opened", updated_at=NOW)
    after = record(order, stale).document
    assert after.fulfillment_status == "FULFILLED"
    assert after.timeline[-1].type == "fulfillment_order.opened"  # it still touched the order


def test_a_related_event_goes_on_the_timeline_only() -> None:
    order = placed()
    event = CloudEvent(source="inventory", type="inventory.reserved", subject=order.id, data={}, actor="alice")
    after = domain.record_on_timeline(order, event, LATER).document
    assert after.timeline[-1] == TimelineEntry(at=event.time.isoformat(), recorded_at=LATER, type="inventory.reserved",
                                               source="inventory", event_id=event.id, actor="alice",
                                               message="Inventory reserved")  # fmt: skip
    assert replace(after, timeline=()) == replace(order, timeline=())


def test_every_fulfillment_event_carrying_a_fulfillment_order_is_handled() -> None:
    expected = {t for t in CATALOG if t.startswith(("fulfillment_order.", "fulfillment.", "fulfillment_request."))}
    assert expected <= set(FULFILLMENT_ORDER_EVENTS)
    assert not [t for t in FULFILLMENT_ORDER_EVENTS if t.startswith("bulk_job.")]


def test_an_event_without_a_fulfillment_order_snapshot_only_goes_on_the_timeline() -> None:
    order = placed()
    event = CloudEvent(source="fulfillment", type="fulfillment_order.opened", subject=order.id, data={})
    after = record(order, event)
    assert after.events == [] and after.document.fulfillment_orders == {}
    assert after.document.timeline[-1].type == "fulfillment_order.opened"


def test_the_caller_is_the_actor_of_the_events_and_the_timeline_entries_of_what_it_did() -> None:
    """Issue 6: every change made over HTTP records the token's subject as `actor` in the event it
    emits and in the order's timeline; what the platform does on its own has none."""
    with acting_as("merchant-alice"):
        change = announced(order_request(financial_status="paid"), NOW)
    assert [(e.type, e.actor) for e in change.events] == [("order.created", "merchant-alice"),
                                                          ("order.paid", "merchant-alice")]  # fmt: skip
    assert {entry.actor for entry in change.document.timeline} == {"merchant-alice"}
    assert json.loads(change.events[0].to_bytes())["actor"] == "merchant-alice"
    unattended = announced(order_request(), NOW)
    assert unattended.events[0].actor is None and "actor" not in json.loads(unattended.events[0].to_bytes())


# --- notes: timeline entries written apart from the order (one write, no read) ---------------------


def test_notes_show_on_the_timeline_in_the_order_they_were_recorded() -> None:
    order = placed(financial_status="paid")  # order.created, order.paid at NOW
    reserved = CloudEvent(source="inventory", type="inventory.reserved", subject=order.id, data={})
    sent = CloudEvent(source="notifications", type="notification.sent", subject=order.id, data={})
    notes = {
        sent.id: domain.timeline_entry(sent, "2025-05-01T12:00:00.000000+00:00"),
        reserved.id: domain.timeline_entry(reserved, LATER),
    }
    types = [entry.type for entry in domain.timeline(replace(order, timeline_notes=notes))]
    assert types == ["order.created", "order.paid", "inventory.reserved", "notification.sent"]


def test_the_next_write_of_the_order_folds_its_notes_into_the_timeline() -> None:
    order = placed()
    reserved = CloudEvent(source="inventory", type="inventory.reserved", subject=order.id, data={})
    order = replace(order, timeline_notes={reserved.id: domain.timeline_entry(reserved, LATER)})
    paid = domain.pay(order, "2025-05-01T12:00:00.000000+00:00")
    assert paid is not None and not paid.document.timeline_notes
    assert [entry.type for entry in paid.document.timeline] == [
        "order.created",
        "inventory.reserved",
        "order.paid",
    ]


def test_a_snapshot_the_order_already_holds_changes_nothing_but_the_timeline() -> None:
    """Why an event carrying a snapshot the service just wrote (fulfillment.created, then
    fulfillment_order.closed with the same fulfillment order) can be a note without a read."""
    order = fully_fulfilled(placed(financial_status="paid"))
    closed = fulfillment_event(order, "fulfillment_order.closed", **as_stored(order.fulfillment_orders["fo-1"]))
    incoming = carried(closed)
    assert incoming is not None
    assert domain.snapshot_digest(incoming) == domain.snapshot_digest(order.fulfillment_orders["fo-1"])
    change = record(order, closed, "2025-05-01T12:00:00.000000+00:00")
    assert change.events == []
    assert replace(change.document, timeline=()) == replace(order, timeline=())


def test_the_service_remembers_the_snapshots_it_wrote_and_only_those() -> None:
    order = fully_fulfilled(placed(financial_status="paid"))
    written = WrittenSnapshots(size=2)
    same = carried(fulfillment_event(order, "fulfillment_order.closed", **as_stored(order.fulfillment_orders["fo-1"])))
    assert not written.holds(order.id, same), "nothing remembered yet: read the order"
    written.remember(order)
    assert written.holds(order.id, same)
    newer = carried(
        fulfillment_event(order, "fulfillment_order.opened", status="OPEN", updated_at="2025-05-02T00:00:00Z")
    )
    assert not written.holds(order.id, newer), "a different snapshot: read the order and derive again"
    assert written.holds(order.id, None), "no snapshot: a note"
    for other in (placed(financial_status="paid"), placed(financial_status="paid")):
        written.remember(fully_fulfilled(other))
    assert not written.holds(order.id, same), "bounded: the oldest is forgotten"
