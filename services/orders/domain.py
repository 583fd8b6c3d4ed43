"""The order's rules: placing, paying, cancelling, and what its fulfillment status shows.

Pure functions over the order document: no I/O. Each returns the order as it should be now
and the events that say so, or raises OrderRuleViolation with the reason.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.catalog import (
    DisplayFulfillmentStatus,
    FinancialStatus,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    HoldReason,
    OrderCreated,
    OrderFulfillmentStatusChanged,
    OrderPaid,
    OrderSnapshot,
)
from shared.events import CloudEvent, new_event
from shared.store import Change, Document

SOURCE = "orders"


class OrderRuleViolation(Exception):
    """The order is not in a state that allows this action; the message says why."""


def place(request: dict[str, Any], now: str) -> Change:
    """A new order; one placed already paid is announced as created and then paid."""
    order_id = str(uuid.uuid4())
    lines = [{"id": str(uuid.uuid4()), **line} for line in request["line_items"]]
    order: Document = {
        **request,
        "id": order_id,
        "line_items": lines,
        "fulfillment_status": DisplayFulfillmentStatus.UNFULFILLED.value,
        "created_at": now,
        "cancelled_at": None,
        "cancel_reason": None,
        "fulfillment_orders": {},
        "timeline": [],
    }
    events = [_order_event("order.created", order, OrderCreated)]
    if order["financial_status"] == FinancialStatus.PAID:
        order["paid_at"] = now
        events.append(_order_event("order.paid", order, OrderPaid))
    _note(order, now, events)
    return Change(order, events)


def pay(order: Document, now: str) -> Change | None:
    """Mark a pending order paid. Paying a paid order again is a no-op, not a second event."""
    if order["financial_status"] == FinancialStatus.PAID:
        return None
    if order.get("cancelled_at"):
        raise OrderRuleViolation("the order is cancelled and cannot be paid")
    if order["financial_status"] != FinancialStatus.PENDING:
        raise OrderRuleViolation(f"an order that is {order['financial_status']} cannot be paid")
    order = {**order, "financial_status": FinancialStatus.PAID.value, "paid_at": now}
    events = [_order_event("order.paid", order, OrderPaid)]
    _note(order, now, events)
    return Change(order, events)


def record_fulfillment_order(order: Document, event: CloudEvent, now: str) -> Change:
    """Keep the latest snapshot of one of the order's fulfillment orders and re-derive the
    order's display fulfillment status from all of them."""
    snapshot = FulfillmentOrderSnapshot.model_validate(event.data["fulfillment_order"])
    known = dict(order.get("fulfillment_orders", {}))
    known[snapshot.id] = snapshot.model_dump(mode="json")
    before = order.get("fulfillment_status")
    order = {**order, "fulfillment_orders": known}
    order["fulfillment_status"] = display_fulfillment_status(
        [FulfillmentOrderSnapshot.model_validate(fo) for fo in known.values()]
    ).value
    change = record_on_timeline(order, event, now)
    if order["fulfillment_status"] != before:
        status = OrderFulfillmentStatusChanged(order_id=order["id"], fulfillment_status=order["fulfillment_status"])
        change.events.append(new_event(SOURCE, "order.fulfillment_status_changed", order["id"], status))
    return change


def record_on_timeline(order: Document, event: CloudEvent, now: str) -> Change:
    """Anything that touched the order goes on its timeline (shown newest first)."""
    entry = {"at": event.time.isoformat(), "recorded_at": now, "type": event.type, "source": event.source,
             "event_id": event.id}  # fmt: skip
    return Change({**order, "timeline": [*order.get("timeline", []), entry]})


def display_fulfillment_status(fulfillment_orders: list[FulfillmentOrderSnapshot]) -> DisplayFulfillmentStatus:
    """What the merchant sees on the order, following Shopify's display statuses.

    An order with any unfulfilled, un-held item shows UNFULFILLED, not ON_HOLD.
    """
    live = [fo for fo in fulfillment_orders if fo.status != FulfillmentOrderStatus.CANCELLED]
    if not live:
        return DisplayFulfillmentStatus.UNFULFILLED
    ordered = sum(line.quantity for fo in live for line in fo.line_items)
    fulfilled = sum(line.fulfilled_quantity for fo in live for line in fo.line_items)
    if ordered and fulfilled >= ordered:
        return DisplayFulfillmentStatus.FULFILLED
    if fulfilled:
        return DisplayFulfillmentStatus.PARTIALLY_FULFILLED
    open_ones = [fo for fo in live if fo.status != FulfillmentOrderStatus.CLOSED]
    statuses = {fo.status for fo in open_ones}
    if FulfillmentOrderStatus.IN_PROGRESS in statuses:
        return DisplayFulfillmentStatus.IN_PROGRESS
    if statuses == {FulfillmentOrderStatus.ON_HOLD}:
        reasons = {hold.reason for fo in open_ones for hold in fo.holds}
        if reasons == {HoldReason.POST_PURCHASE_UPSELL}:
            return DisplayFulfillmentStatus.PENDING
        return DisplayFulfillmentStatus.ON_HOLD
    if statuses == {FulfillmentOrderStatus.SCHEDULED}:
        return DisplayFulfillmentStatus.SCHEDULED
    return DisplayFulfillmentStatus.UNFULFILLED


def snapshot(order: Document) -> OrderSnapshot:
    return OrderSnapshot.model_validate(order)


def _order_event(event_type: str, order: Document, model: type[OrderCreated] | type[OrderPaid]) -> CloudEvent:
    return new_event(SOURCE, event_type, order["id"], model(order=snapshot(order)))


def _note(order: Document, now: str, events: list[CloudEvent]) -> None:
    """The order's own events go on its timeline in the same write that emits them."""
    for event in events:
        order["timeline"] = [*order.get("timeline", []), {
            "at": event.time.isoformat(), "recorded_at": now, "type": event.type, "source": SOURCE,
            "event_id": event.id,
        }]  # fmt: skip
