"""What fulfillment tells the order: the latest snapshot of each of its fulfillment orders, and
the display fulfillment status and fulfill-by deadline the merchant sees, derived from them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from services.orders.domain.model import Order
from services.orders.domain.timeline import emit, record_on_timeline, timeline_entry, with_timeline
from shared import clock
from shared.aggregates import Change
from shared.catalog import (
    WITH_SERVICE,
    Contract,
    DisplayFulfillmentStatus,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    HoldReason,
    OrderFulfillmentStatusChanged,
    RequestStatus,
)
from shared.events import CloudEvent

OPEN_FULFILLMENT_ORDER_STATUSES = frozenset(
    {
        FulfillmentOrderStatus.OPEN,
        FulfillmentOrderStatus.SCHEDULED,
        FulfillmentOrderStatus.ON_HOLD,
        FulfillmentOrderStatus.IN_PROGRESS,
    }
)


def record_fulfillment_order(
    order: Order, event: CloudEvent, incoming: FulfillmentOrderSnapshot | None, now: str, data: Contract | None = None
) -> Change[Order]:
    """Keep the latest snapshot of one of the order's fulfillment orders (`incoming`, the one the
    event carries; None: it carries none, and only goes on the timeline) and re-derive the order's
    display fulfillment status and fulfill-by deadline from all of them. `data`: the event's data,
    for its timeline entry (timeline_entry)."""
    if incoming is None:
        return record_on_timeline(order, event, now, data)
    known = dict(order.fulfillment_orders)
    previous = known.get(incoming.id)
    if previous is None or not _is_older(incoming.updated_at, previous.updated_at):
        known[incoming.id] = incoming
    status = display_fulfillment_status(known.values())
    recorded = replace(order, fulfillment_orders=known, fulfillment_status=status,
                       fulfill_by=earliest_fulfill_by(known.values()))  # fmt: skip
    recorded = with_timeline(recorded, [timeline_entry(event, now, data)])
    if status == order.fulfillment_status:
        return Change(recorded)
    changed = OrderFulfillmentStatusChanged(order_id=order.id, fulfillment_status=status)
    return emit(recorded, [("order.fulfillment_status_changed", changed)], now)


def snapshot_digest(snapshot: FulfillmentOrderSnapshot) -> str:
    """A fingerprint of a fulfillment-order snapshot: equal for equal snapshots."""
    return hashlib.sha256(snapshot.model_dump_json().encode()).hexdigest()


def display_fulfillment_status(fulfillment_orders: Iterable[FulfillmentOrderSnapshot]) -> DisplayFulfillmentStatus:
    """What the merchant sees on the order, following Shopify's display statuses.

    Cancelled fulfillment orders do not count. Of the items still to fulfil: any declined
    by a fulfillment service shows REQUEST_DECLINED; all on hold shows ON_HOLD (PENDING when
    the only hold is the post-purchase upsell window); all scheduled shows SCHEDULED. So an
    order with any unfulfilled, un-held item never shows ON_HOLD. Otherwise some fulfilled
    shows PARTIALLY_FULFILLED; all with a fulfillment service (or marked in progress) shows
    IN_PROGRESS; else UNFULFILLED.
    """
    live = [fo for fo in fulfillment_orders if fo.status != FulfillmentOrderStatus.CANCELLED]
    ordered = sum(line.quantity for fo in live for line in fo.line_items)
    if ordered <= 0:
        return DisplayFulfillmentStatus.UNFULFILLED
    remaining = [fo for fo in live if _unfulfilled(fo) > 0]
    if not remaining:
        return DisplayFulfillmentStatus.FULFILLED
    if any(fo.request_status == RequestStatus.REJECTED for fo in remaining):
        return DisplayFulfillmentStatus.REQUEST_DECLINED
    if all(fo.status == FulfillmentOrderStatus.ON_HOLD for fo in remaining):
        reasons = {hold.reason for fo in remaining for hold in fo.holds}
        if reasons == {HoldReason.POST_PURCHASE_UPSELL}:
            return DisplayFulfillmentStatus.PENDING
        return DisplayFulfillmentStatus.ON_HOLD
    if all(fo.status == FulfillmentOrderStatus.SCHEDULED for fo in remaining):
        return DisplayFulfillmentStatus.SCHEDULED
    if any(line.fulfilled_quantity > 0 for fo in live for line in fo.line_items):
        return DisplayFulfillmentStatus.PARTIALLY_FULFILLED
    if all(fo.status == FulfillmentOrderStatus.IN_PROGRESS or fo.request_status in WITH_SERVICE
           for fo in remaining):  # fmt: skip
        return DisplayFulfillmentStatus.IN_PROGRESS
    return DisplayFulfillmentStatus.UNFULFILLED


def earliest_fulfill_by(fulfillment_orders: Iterable[FulfillmentOrderSnapshot]) -> str | None:
    """The order's deadline: the earliest fulfill-by of its still-open fulfillment orders."""
    deadlines = [
        instant
        for fo in fulfillment_orders
        if fo.status in OPEN_FULFILLMENT_ORDER_STATUSES and (instant := _instant(fo.fulfill_by)) is not None
    ]
    return min(deadlines).isoformat(timespec="microseconds") if deadlines else None


def _unfulfilled(fulfillment_order: FulfillmentOrderSnapshot) -> int:
    return sum(max(line.quantity - line.fulfilled_quantity, 0) for line in fulfillment_order.line_items)


def _instant(value: str | None) -> datetime | None:
    """An RFC 3339 time in UTC, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return clock.parse(value)
    except ValueError:
        return None


def _is_older(candidate: str, current: str) -> bool:
    """A snapshot older than the one kept (a late redelivery) must not undo a newer one."""
    candidate_at, current_at = _instant(candidate), _instant(current)
    return candidate_at is not None and current_at is not None and candidate_at < current_at
