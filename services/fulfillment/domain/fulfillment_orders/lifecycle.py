"""A fulfillment order's life: created as the routing planned it, opened (now or at its scheduled
time), moved to another location, re-routed when its reservation fails or stock arrives for its
out-of-stock hold, cancelled with its order (Shopify's "Fulfillment order statuses", "Changing the
fulfillment location" and "Scheduling fulfillments").

Every rule is a pure function: it returns the fulfillment order as it should be now and the events
that announce it (a `Transition`), None when there is nothing to do (a replayed or raced trigger),
or raises `TransitionRefused` (not allowed in this state: HTTP 409) or `InvalidRequest` (the request
names lines or values that cannot be: HTTP 422).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from shared.catalog import WITH_SERVICE, OrderSnapshot, RequestStatus
from shared.clock import parse
from shared.events import CloudEvent

from ..routing import RoutingLocation
from .announcements import fo_event, to_service
from .model import (
    LEGACY_NO_CANCEL,
    TERMINAL,
    FulfillmentOrder,
    FulfillmentRequest,
    InvalidRequest,
    PlanEntry,
    Reservation,
    Status,
    Transition,
    TransitionRefused,
)
from .service_requests import submitted
from .shipping import fulfil

# --- creation and the routing's own transitions ---------------------------------------------


def create(entry: PlanEntry, order: OrderSnapshot, now: str) -> Transition:
    """A fulfillment order as the routing planned it (see order_routing): held, scheduled or
    open; digital lines (and everything, when automatic) ship at once once nothing stops them."""
    fo = planned(entry, order, now)
    return with_progress(fo, (fo_event("fulfillment_order.created", fo, entry.reason),), now)


def tombstone(entry: PlanEntry, order: OrderSnapshot, reason: str, now: str) -> Transition:
    """A planned fulfillment order that the order's cancellation overtook: recorded as
    cancelled so that a late creation finds it taken, announced to nobody (it never existed)."""
    fo = planned(entry, order, now)
    return Transition(
        replace(fo, status=Status.CANCELLED, cancel_reason=reason, reservation_status=Reservation.NOT_REQUIRED)
    )


def planned(entry: PlanEntry, order: OrderSnapshot, now: str) -> FulfillmentOrder:
    fo = FulfillmentOrder(
        id=entry.fulfillment_order_id,
        order_id=order.id,
        kind=entry.kind,
        location_id=entry.location_id,
        location_name=entry.location_name,
        fulfillment_service=entry.fulfillment_service,
        workflow=entry.workflow,
        status=Status.OPEN,
        fulfill_at=entry.fulfill_at,
        fulfill_by=entry.fulfill_by,
        holds=entry.holds,
        line_items=tuple(replace(line, fulfilled_quantity=0) for line in entry.lines),
        routing_reason=entry.reason,
        reservation_status=Reservation.PENDING if entry.location_id else Reservation.NOT_REQUIRED,
        auto_fulfill=entry.auto_fulfill,
        excluded_locations=entry.excluded_locations,
        order=order,
        created_at=now,
        updated_at=now,
    )
    return replace(fo, status=Status.ON_HOLD if fo.holds else fo.working_status(now))


def cancel(fo: FulfillmentOrder, reason: str, now: str) -> Transition | None:
    """The order was cancelled: what is not yet fulfilled will not be; inventory releases its
    stock, and a fulfillment service that has the request is told to stop."""
    if fo.status in TERMINAL:
        return None
    fo = replace(fo, status=Status.CANCELLED, cancel_reason=reason, updated_at=now)
    events = [fo_event("fulfillment_order.cancelled", fo, reason)]
    if fo.request_status in WITH_SERVICE:
        events.append(to_service("fulfillment_service.fulfillment_order_cancelled", fo, reason))
    return Transition(fo, tuple(events))


def reservation_confirmed(fo: FulfillmentOrder, location_id: str, now: str) -> Transition | None:
    """Inventory holds the stock: the fulfillment order may now be fulfilled (and is, when automatic)."""
    if fo.location_id != location_id or fo.reservation_status != Reservation.PENDING or fo.status in TERMINAL:
        return None  # about an earlier location, or already known
    return with_progress(replace(fo, reservation_status=Reservation.RESERVED, updated_at=now), (), now)


def reservation_failed(fo: FulfillmentOrder, location_id: str, shortage: str, now: str) -> Transition | None:
    """Someone was faster at that location: this fulfillment order gives way to a re-route
    (new fulfillment orders planned without that location). It held no stock."""
    if fo.location_id != location_id or fo.reservation_status != Reservation.PENDING or fo.status in TERMINAL:
        return None
    reason = f"reservation at {fo.where} failed ({shortage}): re-routed to the next location"
    fo = replace(
        fo,
        status=Status.CANCELLED,
        reservation_status=Reservation.NOT_REQUIRED,
        excluded_locations=tuple(sorted({*fo.excluded_locations, location_id})),
        reroute_pending=True,
        cancel_reason=reason,
        updated_at=now,
    )
    return Transition(fo, (fo_event("fulfillment_order.cancelled", fo, reason),))


def replace_out_of_stock(fo: FulfillmentOrder, now: str) -> Transition | None:
    """Stock arrived for an out-of-stock hold: it gives way to a re-route over the new stock."""
    if not fo.is_out_of_stock_hold:
        return None
    reason = "stock arrived: the out-of-stock lines are re-routed"
    fo = replace(
        fo, status=Status.CANCELLED, reroute_pending=True, excluded_locations=(), cancel_reason=reason, updated_at=now
    )
    return Transition(fo, (fo_event("fulfillment_order.cancelled", fo, reason),))


def reroute_recorded(fo: FulfillmentOrder, replaced_by: list[str], now: str) -> Transition | None:
    """The routing planned the replacements: nothing is left to re-route."""
    if not fo.reroute_pending:
        return None
    return Transition(replace(fo, reroute_pending=False, replaced_by=tuple(replaced_by), updated_at=now))


# --- where and when -------------------------------------------------------------------------


def move(fo: FulfillmentOrder, location: RoutingLocation, available: Mapping[str, int], now: str) -> Transition:
    """Ship from another location instead: inventory reserves there and releases here. An OPEN
    fulfillment order moves, and an INCOMPLETE one (its fulfillment service gave up: the merchant
    takes it elsewhere), and one in packing with nothing shipped yet (back to OPEN at the new
    location). The request history stays behind: at the new location nothing was
    requested yet, so a declined request no longer shows on the order."""
    if fo.request_status in WITH_SERVICE:
        what_next = LEGACY_NO_CANCEL if fo.legacy else MOVE_WITH_SERVICE[fo.request_status]
        raise TransitionRefused(
            f"the fulfillment request is {fo.request_status} at fulfillment service {fo.fulfillment_service}: "
            + what_next
        )
    packing_only = fo.status == Status.IN_PROGRESS and fo.packed_at is not None and not fo.fulfilled_any
    if fo.status not in (Status.OPEN, Status.INCOMPLETE) and not packing_only:
        hint = {Status.ON_HOLD: ": release the hold first", Status.IN_PROGRESS: ": part of it has already shipped"}
        raise TransitionRefused(
            f"only an OPEN or INCOMPLETE fulfillment order can move; this one is {fo.status}{hint.get(fo.status, '')}"
        )
    if fo.location_id is None:
        raise TransitionRefused("this fulfillment order needs no location (digital lines)")
    if location.id == fo.location_id:
        raise TransitionRefused(f"the fulfillment order is already at {location.id}")
    if not location.active:
        raise TransitionRefused(f"location {location.id} is not active")
    short = [
        f"{line.sku} ({available.get(line.sku, 0)} available, {line.quantity} needed)"
        for line in fo.remaining_lines()
        if available.get(line.sku, 0) < line.quantity
    ]
    if short:
        raise TransitionRefused(f"location {location.id} does not have the stock: {', '.join(short)}")
    previous = fo.location_id
    reason = f"moved by the merchant from {previous} to {location.describe()}"
    fo = replace(
        fo,
        location_id=location.id,
        location_name=location.name,
        fulfillment_service=location.fulfillment_service,
        workflow=location.workflow,
        request_status=RequestStatus.UNSUBMITTED,
        reservation_status=Reservation.PENDING,
        excluded_locations=(),
        routing_reason=reason,
        packed_at=None,  # packed at the old location: the new one packs it in its own run
        updated_at=now,
    )
    fo = replace(fo, status=fo.working_status(now))
    return Transition(fo, (fo_event("fulfillment_order.moved", fo, reason, previous_location_id=previous),))


MOVE_WITH_SERVICE = {
    RequestStatus.SUBMITTED: "withdraw the request first",
    RequestStatus.ACCEPTED: "it was accepted: request a cancellation first",
    RequestStatus.CANCELLATION_REQUESTED: "wait for its answer, or reset it to unfulfilled",
    RequestStatus.CANCELLATION_REJECTED: "it refused to cancel: it is shipping this",
}
"""What the merchant can do about a request the service still has, before moving."""


def set_fulfill_by(fo: FulfillmentOrder, fulfill_by: str | None, now: str) -> Transition:
    """Set, change or clear the deadline by which the fulfillment order should ship."""
    if fo.status in TERMINAL:
        raise TransitionRefused(f"the fulfillment order is {fo.status}: its deadline no longer matters")
    fo = replace(fo, fulfill_by=fulfill_by, updated_at=now)
    why = f"fulfill by {fulfill_by}" if fulfill_by else "fulfill-by deadline cleared"
    return Transition(fo, (fo_event("fulfillment_order.fulfill_by_changed", fo, why),))


def schedule(fo: FulfillmentOrder, fulfill_at: str, now: str) -> Transition:
    """Open the fulfillment order only at `fulfill_at` (the sweep opens it)."""
    if parse(fulfill_at) <= parse(now):
        raise InvalidRequest("fulfill_at", "must be in the future")
    if fo.status not in (Status.OPEN, Status.SCHEDULED) or fo.fulfilled_any:
        raise TransitionRefused(
            f"only an OPEN fulfillment order with nothing shipped can be scheduled; this one is {fo.status}"
        )
    fo = replace(fo, fulfill_at=fulfill_at, status=Status.SCHEDULED, updated_at=now)
    return Transition(fo, (fo_event("fulfillment_order.scheduled", fo, f"opens at {fulfill_at}"),))


def open_scheduled(fo: FulfillmentOrder, now: str, *, due_only: bool) -> Transition | None:
    """Open a scheduled fulfillment order: the sweep when its time has come, or the merchant early."""
    if fo.status != Status.SCHEDULED:
        if due_only:
            return None
        raise TransitionRefused(f"the fulfillment order is {fo.status}, not SCHEDULED")
    if due_only and fo.fulfill_at and parse(fo.fulfill_at) > parse(now):
        return None
    fo = replace(fo, fulfill_at=fo.fulfill_at if due_only else now, updated_at=now)
    fo = replace(fo, status=fo.working_status(now))
    why = "its scheduled time has come" if due_only else "opened early by the merchant"
    return with_progress(fo, (fo_event("fulfillment_order.opened", fo, why),), now)


# --- automatic fulfillment ------------------------------------------------------------------


def with_progress(fo: FulfillmentOrder, events: tuple[CloudEvent, ...], now: str) -> Transition:
    """`fo` with `events`, then shipped at once if it is automatic (see `progressed`)."""
    return Transition(fo, events).then(progressed(fo, now))


def progressed(fo: FulfillmentOrder, now: str) -> Transition | None:
    """An open fulfillment order whose stock is secured ships at once when automatic (digital
    lines always are): itself, or through its fulfillment service's request. None: it waits. A
    draft's waits for the order's customer (see packing.order_updated): its download links and
    shipping confirmation would go to nobody."""
    if not fo.auto_fulfill or fo.status != Status.OPEN or fo.reservation_status == Reservation.PENDING:
        return None
    if fo.order.is_draft:
        return None
    if fo.fulfillment_service:
        if fo.request_status == RequestStatus.UNSUBMITTED:
            return submitted(fo, "automatic fulfillment", now)
        return None
    return fulfil(fo, FulfillmentRequest(notify_customer=True), now)
