"""The fulfillment order: one per order and location, with its holds, schedule and fulfillments.

Follows Shopify's fulfillment orders. Every transition is a rule here: a pure function of
the fulfillment order document that returns the document as it should be now and the
events that announce it, returns None when there is nothing to do (a replayed or raced
trigger), or raises `TransitionRefused` (the action is not allowed in this state: HTTP 409)
or `InvalidRequest` (the request names lines or values that cannot be: HTTP 422).

Statuses: OPEN (can be fulfilled), SCHEDULED (opens at fulfill_at), ON_HOLD (one or more
holds), IN_PROGRESS (partly fulfilled, the rest still open, or accepted by a fulfillment
service), INCOMPLETE (the fulfillment service cannot ship the rest), CLOSED (every line
fulfilled), CANCELLED. A fulfillment order at a location holds reserved stock there; it can
be fulfilled only once inventory confirmed that reservation.

At a location run by a fulfillment service the request follows Shopify's request statuses:
UNSUBMITTED -> SUBMITTED -> ACCEPTED (or REJECTED: back to the merchant) -> CLOSED when it
shipped everything; the merchant may ask to cancel (CANCELLATION_REQUESTED), which the service
accepts (CANCELLATION_ACCEPTED: the fulfillment order is cancelled) or rejects
(CANCELLATION_REJECTED: it keeps shipping).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.aggregates import Change, Document
from shared.catalog import (
    FulfillmentChanged,
    FulfillmentLine,
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    FulfillmentRequestChanged,
    FulfillmentRequestRejection,
    FulfillmentServiceRequest,
    FulfillmentServiceResponse,
    FulfillmentServiceShipment,
    FulfillmentSnapshot,
    HoldReason,
    LabelStatus,
    OrderSnapshot,
    RejectionReason,
    RequestStatus,
    Tracking,
)
from shared.events import CloudEvent, new_event
from shared.rules import RuleViolation

from .routing import RoutingLocation

SOURCE = "fulfillment"
NO_DEADLINE = "9999-12-31T23:59:59.999999+00:00"
"""Sort key of a fulfillment order without a fulfill-by date: after every real deadline."""

Status = FulfillmentOrderStatus
TERMINAL = (Status.CLOSED, Status.CANCELLED)
SYSTEM_HOLDS = (HoldReason.POST_PURCHASE_UPSELL,)
"""Hold reasons only the platform places and releases."""
WITH_SERVICE = (
    RequestStatus.SUBMITTED,
    RequestStatus.ACCEPTED,
    RequestStatus.CANCELLATION_REQUESTED,
    RequestStatus.CANCELLATION_REJECTED,
)
"""Request statuses in which the fulfillment service has the work: the merchant does not ship,
hold or move it."""


class Kind(StrEnum):
    SHIPPING = "shipping"  # physical lines at a location
    DIGITAL = "digital"  # lines that need no location
    OUT_OF_STOCK = "out_of_stock"  # physical lines no location could cover yet


class Reservation(StrEnum):
    """Whether inventory holds this fulfillment order's stock at its location."""

    PENDING = "PENDING"
    RESERVED = "RESERVED"
    NOT_REQUIRED = "NOT_REQUIRED"


class TransitionRefused(RuleViolation):
    """The action is not allowed in the fulfillment order's current state; the message says why."""


class NotTheFulfillmentService(TransitionRefused):
    """An answer about a fulfillment order from a service that does not run its location."""


class InvalidRequest(Exception):
    """The request names something that cannot be, for this fulfillment order."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class LineQuantity:
    line_item_id: str
    quantity: int


@dataclass(frozen=True)
class FulfillmentRequest:
    """A shipment the merchant (or automatic fulfillment) makes; lines None means all that remain."""

    lines: Sequence[LineQuantity] | None = None
    tracking: Tracking = field(default_factory=Tracking)
    notify_customer: bool = False
    label: LabelStatus = LabelStatus.NONE


# --- creation and the routing's own transitions ---------------------------------------


def create(entry: Mapping[str, Any], order: OrderSnapshot, now: str) -> Change:
    """A fulfillment order as the routing planned it (see order_routing): held, scheduled or
    open; digital lines (and everything, when automatic) ship at once once nothing stops them."""
    fo = _planned(entry, order, now)
    events = [_fo_event("fulfillment_order.created", fo, entry["reason"])]
    _progress_automatically(fo, events, now)
    return _changed(fo, events)


def tombstone(entry: Mapping[str, Any], order: OrderSnapshot, reason: str, now: str) -> Change:
    """A planned fulfillment order that the order's cancellation overtook: recorded as
    cancelled so that a late creation finds it taken, announced to nobody (it never existed)."""
    fo = _planned(entry, order, now)
    fo.update(status=Status.CANCELLED.value, cancel_reason=reason, reservation_status=Reservation.NOT_REQUIRED.value)
    return _changed(fo, [])


def _planned(entry: Mapping[str, Any], order: OrderSnapshot, now: str) -> Document:
    location_id = entry["location_id"]
    holds = [dict(hold) for hold in entry.get("holds", [])]
    fo: Document = {
        "id": entry["fulfillment_order_id"],
        "order_id": order.id,
        "kind": entry["kind"],
        "location_id": location_id,
        "location_name": entry.get("location_name"),
        "fulfillment_service": entry.get("fulfillment_service"),
        "status": Status.OPEN.value,
        "request_status": RequestStatus.UNSUBMITTED.value,
        "fulfill_at": entry.get("fulfill_at"),
        "fulfill_by": entry.get("fulfill_by"),
        "holds": holds,
        "line_items": [{**line, "fulfilled_quantity": 0} for line in entry["lines"]],
        "routing_reason": entry["reason"],
        "reservation_status": (Reservation.PENDING if location_id else Reservation.NOT_REQUIRED).value,
        "auto_fulfill": bool(entry.get("auto_fulfill")),
        "excluded_locations": list(entry.get("excluded_locations", [])),
        "fulfillments": {},
        "order": order.model_dump(mode="json"),
        "cancel_reason": None,
        "replaced_by": None,
        "reroute_pending": False,
        "created_at": now,
        "updated_at": now,
    }
    fo["status"] = (Status.ON_HOLD if holds else _working_status(fo, now)).value
    return fo


def cancel(fo: Document, reason: str, now: str) -> Change | None:
    """The order was cancelled: what is not yet fulfilled will not be; inventory releases its
    stock, and a fulfillment service that has the request is told to stop."""
    if fo["status"] in TERMINAL:
        return None
    fo = _copy(fo, now)
    fo["status"] = Status.CANCELLED.value
    fo["cancel_reason"] = reason
    events = [_fo_event("fulfillment_order.cancelled", fo, reason)]
    if fo["request_status"] in WITH_SERVICE:
        events.append(_to_service("fulfillment_service.fulfillment_order_cancelled", fo, reason))
    return _changed(fo, events)


def reservation_confirmed(fo: Document, location_id: str, now: str) -> Change | None:
    """Inventory holds the stock: the fulfillment order may now be fulfilled (and is, when automatic)."""
    if fo["location_id"] != location_id or fo["reservation_status"] != Reservation.PENDING or fo["status"] in TERMINAL:
        return None  # about an earlier location, or already known
    fo = _copy(fo, now)
    fo["reservation_status"] = Reservation.RESERVED.value
    events: list[CloudEvent] = []
    _progress_automatically(fo, events, now)
    return _changed(fo, events)


def reservation_failed(fo: Document, location_id: str, shortage: str, now: str) -> Change | None:
    """Someone was faster at that location: this fulfillment order gives way to a re-route
    (new fulfillment orders planned without that location). It held no stock."""
    if fo["location_id"] != location_id or fo["reservation_status"] != Reservation.PENDING or fo["status"] in TERMINAL:
        return None
    fo = _copy(fo, now)
    fo["status"] = Status.CANCELLED.value
    fo["reservation_status"] = Reservation.NOT_REQUIRED.value
    fo["excluded_locations"] = sorted({*fo.get("excluded_locations", []), location_id})
    fo["reroute_pending"] = True
    reason = f"reservation at {_where(fo)} failed ({shortage}): re-routed to the next location"
    fo["cancel_reason"] = reason
    return _changed(fo, [_fo_event("fulfillment_order.cancelled", fo, reason)])


def replace_out_of_stock(fo: Document, now: str) -> Change | None:
    """Stock arrived for an out-of-stock hold: it gives way to a re-route over the new stock."""
    if not is_out_of_stock_hold(fo):
        return None
    fo = _copy(fo, now)
    fo["status"] = Status.CANCELLED.value
    fo["reroute_pending"] = True
    fo["excluded_locations"] = []
    reason = "stock arrived: the out-of-stock lines are re-routed"
    fo["cancel_reason"] = reason
    return _changed(fo, [_fo_event("fulfillment_order.cancelled", fo, reason)])


def reroute_recorded(fo: Document, replaced_by: list[str], now: str) -> Change | None:
    """The routing planned the replacements: nothing is left to re-route."""
    if not fo.get("reroute_pending"):
        return None
    fo = _copy(fo, now)
    fo["reroute_pending"] = False
    fo["replaced_by"] = replaced_by
    return _changed(fo, [])


def is_out_of_stock_hold(fo: Mapping[str, Any]) -> bool:
    """Held because no location had the stock; it holds none and re-routes when stock arrives."""
    return (
        fo["status"] == Status.ON_HOLD
        and fo["location_id"] is None
        and any(hold["reason"] == HoldReason.INVENTORY_OUT_OF_STOCK for hold in fo["holds"])
    )


def remaining_lines(fo: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The lines still to fulfil, with the quantity that remains."""
    return [
        {**line, "quantity": line["quantity"] - line["fulfilled_quantity"], "fulfilled_quantity": 0}
        for line in fo["line_items"]
        if line["quantity"] > line["fulfilled_quantity"]
    ]


# --- fulfilling -------------------------------------------------------------------------


def fulfil(fo: Document, request: FulfillmentRequest, now: str) -> Change:
    """Ship all remaining lines, or some of them (a partial shipment: the rest stays open)."""
    _refuse_unless_fulfillable(fo, now)
    return _ship(fo, request, now)


def _ship(fo: Document, request: FulfillmentRequest, now: str) -> Change:
    """A shipment, by the merchant or the fulfillment service: the one rule for both."""
    quantities = _requested_quantities(fo, request.lines)
    fo = _copy(fo, now)
    fulfillment_id = fulfillment_id_for(fo["id"], len(fo["fulfillments"]) + 1)
    shipped = []
    for line in fo["line_items"]:
        quantity = quantities.get(line["line_item_id"], 0)
        if quantity:
            line["fulfilled_quantity"] += quantity
            shipped.append(
                FulfillmentLine(
                    line_item_id=line["line_item_id"],
                    sku=line["sku"],
                    quantity=quantity,
                    digital_asset_url=line.get("digital_asset_url"),
                )
            )
    fulfillment = FulfillmentSnapshot(
        id=fulfillment_id,
        order_id=fo["order_id"],
        fulfillment_order_id=fo["id"],
        location_id=fo["location_id"],
        status="SUCCESS",
        line_items=shipped,
        tracking=request.tracking,
        notify_customer=request.notify_customer,
        label_status=request.label,
        created_at=now,
        updated_at=now,
    ).model_dump(mode="json")
    fo["fulfillments"] = {**fo["fulfillments"], fulfillment_id: fulfillment}
    everything_shipped = all(line["fulfilled_quantity"] >= line["quantity"] for line in fo["line_items"])
    fo["status"] = (Status.CLOSED if everything_shipped else Status.IN_PROGRESS).value
    if everything_shipped and fo["request_status"] in WITH_SERVICE:
        fo["request_status"] = RequestStatus.CLOSED.value
    events = [_fulfillment_event("fulfillment.created", fo, fulfillment_id)]
    if everything_shipped:
        events.append(_fo_event("fulfillment_order.closed", fo, "every line is fulfilled"))
    return _changed(fo, events)


def update_tracking(fo: Document, fulfillment_id: str, tracking: Tracking, notify_customer: bool, now: str) -> Change:
    """Add or change a shipment's tracking after the fact (it replaces what was there)."""
    fulfillment = _fulfillment(fo, fulfillment_id)
    if fulfillment["status"] == "CANCELLED":
        raise TransitionRefused("the fulfillment is cancelled: its tracking can no longer change")
    fo = _copy(fo, now)
    fo["fulfillments"][fulfillment_id] = {
        **fulfillment,
        "tracking": tracking.model_dump(mode="json"),
        "notify_customer": notify_customer,
        "updated_at": now,
    }
    return _changed(fo, [_fulfillment_event("fulfillment.tracking_updated", fo, fulfillment_id)])


def void_label(fo: Document, fulfillment_id: str, now: str) -> Change:
    """Void the shipment's purchased shipping label (needed before the shipment can be cancelled)."""
    fulfillment = _fulfillment(fo, fulfillment_id)
    if fulfillment["label_status"] != LabelStatus.PURCHASED:
        raise TransitionRefused(
            f"the fulfillment has no purchased shipping label to void (label {fulfillment['label_status']})"
        )
    fo = _copy(fo, now)
    fo["fulfillments"][fulfillment_id] = {**fulfillment, "label_status": LabelStatus.VOIDED.value, "updated_at": now}
    return _changed(fo, [_fulfillment_event("fulfillment.label_voided", fo, fulfillment_id)])


def cancel_fulfillment(fo: Document, fulfillment_id: str, now: str) -> Change:
    """Undo a shipment: its lines go back to unfulfilled, its stock back to reserved."""
    fulfillment = _fulfillment(fo, fulfillment_id)
    if fulfillment["status"] == "CANCELLED":
        raise TransitionRefused("the fulfillment is already cancelled")
    if fulfillment["label_status"] == LabelStatus.PURCHASED:
        raise TransitionRefused("the fulfillment has a purchased shipping label: void the label before cancelling")
    if fo["status"] == Status.CANCELLED:
        raise TransitionRefused("the fulfillment order is cancelled: its stock was released, the shipment stays")
    fo = _copy(fo, now)
    fo["fulfillments"][fulfillment_id] = {**fulfillment, "status": "CANCELLED", "updated_at": now}
    returned = {line["line_item_id"]: line["quantity"] for line in fulfillment["line_items"]}
    for line in fo["line_items"]:
        line["fulfilled_quantity"] -= returned.get(line["line_item_id"], 0)
    if fo["status"] != Status.ON_HOLD:
        fo["status"] = _working_status(fo, now).value
    return _changed(fo, [_fulfillment_event("fulfillment.cancelled", fo, fulfillment_id)])


# --- holds ------------------------------------------------------------------------------


def place_hold(fo: Document, reason: HoldReason, note: str, now: str) -> Change:
    """Stop the whole fulfillment order from being fulfilled until the hold is released."""
    if reason in SYSTEM_HOLDS:
        raise InvalidRequest(
            "reason",
            f"{reason} holds are placed by the platform when an order is paid with a post-purchase offer pending",
        )
    if fo["status"] not in (Status.OPEN, Status.IN_PROGRESS, Status.ON_HOLD):
        raise TransitionRefused(f"a fulfillment order that is {fo['status']} cannot be put on hold")
    if fo["request_status"] in WITH_SERVICE:
        raise TransitionRefused(
            f"the fulfillment request is {fo['request_status']} at {fo['fulfillment_service']}: "
            "it cannot be put on hold here"
        )
    if any(hold["reason"] == reason for hold in fo["holds"]):
        raise TransitionRefused(f"the fulfillment order is already on hold for {reason}")
    fo = _copy(fo, now)
    fo["holds"] = [*fo["holds"], {"reason": reason.value, "note": note, "held_at": now}]
    fo["status"] = Status.ON_HOLD.value
    return _changed(
        fo, [_fo_event("fulfillment_order.placed_on_hold", fo, f"{reason.value}: {note}" if note else reason.value)]
    )


def release_hold(fo: Document, now: str, reason: HoldReason | None = None) -> Change:
    """Release the merchant's holds (all, or the one with `reason`); with none left it opens again."""
    if fo["status"] != Status.ON_HOLD:
        raise TransitionRefused(f"the fulfillment order is {fo['status']}, not on hold")
    held_for = ", ".join(hold["reason"] for hold in fo["holds"])
    if reason is not None and all(hold["reason"] != reason for hold in fo["holds"]):
        raise TransitionRefused(f"the fulfillment order is not on hold for {reason} (held for {held_for})")
    releasable = [hold for hold in fo["holds"] if _merchant_releasable(fo, hold) and reason in (None, hold["reason"])]
    if not releasable:
        raise TransitionRefused(
            f"the fulfillment order is held for {held_for}, which the platform releases: "
            "out-of-stock holds re-route when stock arrives, post-purchase holds when the buyer "
            "finishes the offer or the hold expires"
        )
    fo = _copy(fo, now)
    fo["holds"] = [hold for hold in fo["holds"] if hold not in releasable]
    return _released(fo, ", ".join(f"{hold['reason']} hold released" for hold in releasable), now)


def release_post_purchase_hold(fo: Document, now: str, *, expired_only: bool) -> Change | None:
    """The buyer finished the post-purchase offer, or (`expired_only`, the sweep) the hold ran out."""
    upsell = [hold for hold in fo["holds"] if hold["reason"] == HoldReason.POST_PURCHASE_UPSELL]
    if not upsell or fo["status"] in TERMINAL:
        return None
    if expired_only and any(_at(hold["release_at"]) > _at(now) for hold in upsell if hold.get("release_at")):
        return None
    fo = _copy(fo, now)
    fo["holds"] = [hold for hold in fo["holds"] if hold["reason"] != HoldReason.POST_PURCHASE_UPSELL]
    why = "the post-purchase hold expired" if expired_only else "the buyer finished the post-purchase offer"
    return _released(fo, why, now)


def _released(fo: Document, why: str, now: str) -> Change:
    events: list[CloudEvent] = []
    if not fo["holds"] and fo["status"] == Status.ON_HOLD:
        fo["status"] = _working_status(fo, now).value
    events.append(_fo_event("fulfillment_order.hold_released", fo, why))
    _progress_automatically(fo, events, now)
    return _changed(fo, events)


def _merchant_releasable(fo: Mapping[str, Any], hold: Mapping[str, Any]) -> bool:
    if hold["reason"] in SYSTEM_HOLDS:
        return False
    return not (hold["reason"] == HoldReason.INVENTORY_OUT_OF_STOCK and fo["location_id"] is None)


# --- where and when ---------------------------------------------------------------------


def move(fo: Document, location: RoutingLocation, available: Mapping[str, int], now: str) -> Change:
    """Ship from another location instead: inventory reserves there and releases here."""
    if fo["status"] != Status.OPEN:
        hint = {Status.ON_HOLD: ": release the hold first", Status.IN_PROGRESS: ": part of it has already shipped"}
        raise TransitionRefused(
            f"only an OPEN fulfillment order can move; this one is {fo['status']}{hint.get(fo['status'], '')}"
        )
    if fo["location_id"] is None:
        raise TransitionRefused("this fulfillment order needs no location (digital lines)")
    if fo["request_status"] in WITH_SERVICE:
        raise TransitionRefused(f"the fulfillment request is {fo['request_status']} at {fo['fulfillment_service']}")
    if location.id == fo["location_id"]:
        raise TransitionRefused(f"the fulfillment order is already at {location.id}")
    if not location.active:
        raise TransitionRefused(f"location {location.id} is not active")
    short = [
        f"{line['sku']} ({available.get(line['sku'], 0)} available, {line['quantity']} needed)"
        for line in remaining_lines(fo)
        if available.get(line["sku"], 0) < line["quantity"]
    ]
    if short:
        raise TransitionRefused(f"location {location.id} does not have the stock: {', '.join(short)}")
    previous = fo["location_id"]
    fo = _copy(fo, now)
    fo["location_id"] = location.id
    fo["location_name"] = location.name
    fo["fulfillment_service"] = location.fulfillment_service
    fo["reservation_status"] = Reservation.PENDING.value
    fo["excluded_locations"] = []
    fo["routing_reason"] = f"moved by the merchant from {previous} to {location.describe()}"
    return _changed(fo, [_fo_event("fulfillment_order.moved", fo, fo["routing_reason"], previous_location_id=previous)])


def set_fulfill_by(fo: Document, fulfill_by: str | None, now: str) -> Change:
    """Set, change or clear the deadline by which the fulfillment order should ship."""
    if fo["status"] in TERMINAL:
        raise TransitionRefused(f"the fulfillment order is {fo['status']}: its deadline no longer matters")
    fo = _copy(fo, now)
    fo["fulfill_by"] = fulfill_by
    why = f"fulfill by {fulfill_by}" if fulfill_by else "fulfill-by deadline cleared"
    return _changed(fo, [_fo_event("fulfillment_order.fulfill_by_changed", fo, why)])


def schedule(fo: Document, fulfill_at: str, now: str) -> Change:
    """Open the fulfillment order only at `fulfill_at` (the sweep opens it)."""
    if _at(fulfill_at) <= _at(now):
        raise InvalidRequest("fulfill_at", "must be in the future")
    if fo["status"] not in (Status.OPEN, Status.SCHEDULED) or _fulfilled_any(fo):
        raise TransitionRefused(
            f"only an OPEN fulfillment order with nothing shipped can be scheduled; this one is {fo['status']}"
        )
    fo = _copy(fo, now)
    fo["fulfill_at"] = fulfill_at
    fo["status"] = Status.SCHEDULED.value
    return _changed(fo, [_fo_event("fulfillment_order.scheduled", fo, f"opens at {fulfill_at}")])


def open_scheduled(fo: Document, now: str, *, due_only: bool) -> Change | None:
    """Open a scheduled fulfillment order: the sweep when its time has come, or the merchant early."""
    if fo["status"] != Status.SCHEDULED:
        if due_only:
            return None
        raise TransitionRefused(f"the fulfillment order is {fo['status']}, not SCHEDULED")
    if due_only and fo.get("fulfill_at") and _at(fo["fulfill_at"]) > _at(now):
        return None
    fo = _copy(fo, now)
    if not due_only:
        fo["fulfill_at"] = now
    fo["status"] = _working_status(fo, now).value
    events = [
        _fo_event(
            "fulfillment_order.opened",
            fo,
            "its scheduled time has come" if due_only else "opened early by the merchant",
        )
    ]
    _progress_automatically(fo, events, now)
    return _changed(fo, events)


def submit_request(fo: Document, now: str, message: str = "") -> Change:
    """Ask the location's fulfillment service to ship it (it answers on fulfillment.responses.v1)."""
    if not fo.get("fulfillment_service"):
        raise TransitionRefused("the location is not run by a fulfillment service")
    if fo["request_status"] not in (RequestStatus.UNSUBMITTED, RequestStatus.REJECTED):
        raise TransitionRefused(f"the fulfillment request is already {fo['request_status']}")
    _refuse_unless_fulfillable(fo, now, for_request=True)
    fo = _copy(fo, now)
    events: list[CloudEvent] = []
    _submit(fo, events, message)
    return _changed(fo, events)


# --- the fulfillment service's answers, and the merchant's cancellation request -------------


def request_cancellation(fo: Document, message: str, now: str) -> Change:
    """The merchant asks the fulfillment service to cancel what it was asked to ship; the
    service accepts (the fulfillment order is cancelled) or rejects (it keeps shipping)."""
    _refuse_unless_request(
        fo,
        (RequestStatus.SUBMITTED, RequestStatus.ACCEPTED, RequestStatus.CANCELLATION_REJECTED),
        "asked to cancel",
    )
    fo = _copy(fo, now)
    fo["request_status"] = RequestStatus.CANCELLATION_REQUESTED.value
    events = [
        _request_event("cancellation_request.submitted", fo, message),
        _to_service("fulfillment_service.cancellation_requested", fo, message),
    ]
    return _changed(fo, events)


def accept_request(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    """The fulfillment service takes the work: the fulfillment order is in progress there."""
    if _answered_already(fo, answer, RequestStatus.ACCEPTED):
        return None
    _refuse_unless_request(fo, (RequestStatus.SUBMITTED,), "accepted")
    fo = _copy(fo, now)
    fo["request_status"] = RequestStatus.ACCEPTED.value
    fo["status"] = Status.IN_PROGRESS.value
    return _changed(fo, [_request_event("fulfillment_request.accepted", fo, answer.message)])


def reject_request(fo: Document, answer: FulfillmentRequestRejection, now: str) -> Change | None:
    """The fulfillment service will not ship it: back to the merchant, who may fulfil it,
    move it or submit it again (the order shows REQUEST_DECLINED meanwhile)."""
    if _answered_already(fo, answer, RequestStatus.REJECTED):
        return None
    _refuse_unless_request(fo, (RequestStatus.SUBMITTED,), "rejected")
    fo = _copy(fo, now)
    fo["request_status"] = RequestStatus.REJECTED.value
    fo["status"] = _working_status(fo, now).value
    return _changed(fo, [_request_event("fulfillment_request.rejected", fo, answer.message, answer.reason)])


def accept_cancellation(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    """The fulfillment service agrees to cancel: the fulfillment order is cancelled and
    inventory releases its stock (as for any cancelled fulfillment order)."""
    if _answered_already(fo, answer, RequestStatus.CANCELLATION_ACCEPTED):
        return None
    _refuse_unless_request(fo, (RequestStatus.CANCELLATION_REQUESTED,), "cancelled")
    fo = _copy(fo, now)
    fo["request_status"] = RequestStatus.CANCELLATION_ACCEPTED.value
    fo["status"] = Status.CANCELLED.value
    reason = f"cancelled at the merchant's request, accepted by {answer.fulfillment_service}"
    fo["cancel_reason"] = reason
    events = [
        _request_event("cancellation_request.accepted", fo, answer.message),
        _fo_event("fulfillment_order.cancelled", fo, reason),
    ]
    return _changed(fo, events)


def reject_cancellation(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    """The fulfillment service will not cancel (it has shipped or is shipping): it stays in progress."""
    if _answered_already(fo, answer, RequestStatus.CANCELLATION_REJECTED):
        return None
    _refuse_unless_request(fo, (RequestStatus.CANCELLATION_REQUESTED,), "refused a cancellation")
    fo = _copy(fo, now)
    fo["request_status"] = RequestStatus.CANCELLATION_REJECTED.value
    fo["status"] = Status.IN_PROGRESS.value
    return _changed(fo, [_request_event("cancellation_request.rejected", fo, answer.message)])


def shipped_by_service(fo: Document, answer: FulfillmentServiceShipment, now: str) -> Change:
    """The fulfillment service shipped some or all lines (None: all that remain) with tracking:
    a fulfillment like the merchant's, and the buyer is emailed. Shipping everything closes
    the fulfillment order and the request."""
    _check_answering(fo, answer)
    _refuse_unless_request(
        fo,
        (RequestStatus.ACCEPTED, RequestStatus.CANCELLATION_REQUESTED, RequestStatus.CANCELLATION_REJECTED),
        "shipped by the fulfillment service",
    )
    _refuse_unless_fulfillable(fo, now, for_request=True)
    lines = (
        None if answer.line_items is None else [LineQuantity(li.line_item_id, li.quantity) for li in answer.line_items]
    )
    return _ship(fo, FulfillmentRequest(lines=lines, tracking=answer.tracking, notify_customer=True), now)


def cannot_complete(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    """The fulfillment service cannot ship what remains: the fulfillment order is INCOMPLETE
    and the request closed; the merchant decides what next."""
    _check_answering(fo, answer)
    if fo["status"] == Status.INCOMPLETE:
        return None
    _refuse_unless_request(
        fo,
        (RequestStatus.ACCEPTED, RequestStatus.CANCELLATION_REQUESTED, RequestStatus.CANCELLATION_REJECTED),
        "given up by the fulfillment service",
    )
    fo = _copy(fo, now)
    fo["status"] = Status.INCOMPLETE.value
    fo["request_status"] = RequestStatus.CLOSED.value
    why = f"{answer.fulfillment_service} cannot complete it" + (f": {answer.message}" if answer.message else "")
    return _changed(fo, [_fo_event("fulfillment_order.incomplete", fo, why)])


def _check_answering(fo: Mapping[str, Any], answer: FulfillmentServiceResponse) -> None:
    """Only the fulfillment service the request went to (the location's) answers for it."""
    owner = fo.get("fulfillment_service")
    if answer.fulfillment_service != owner:
        whose = f"its location is run by {owner!r}" if owner else "its location is not run by a fulfillment service"
        raise NotTheFulfillmentService(
            f"fulfillment service {answer.fulfillment_service!r} cannot answer for "
            f"fulfillment order {fo['id']}: {whose}"
        )


def _answered_already(fo: Mapping[str, Any], answer: FulfillmentServiceResponse, status: RequestStatus) -> bool:
    """The same answer again (a retry by the service under a new event id): nothing to do."""
    _check_answering(fo, answer)
    return bool(fo["request_status"] == status)


def _refuse_unless_request(fo: Mapping[str, Any], allowed: Sequence[RequestStatus], action: str) -> None:
    if not fo.get("fulfillment_service"):
        raise TransitionRefused("the location is not run by a fulfillment service")
    if fo["status"] in (*TERMINAL, Status.INCOMPLETE):
        raise TransitionRefused(f"the fulfillment order is {fo['status']}: it can no longer be {action}")
    if fo["request_status"] not in allowed:
        expected = " or ".join(allowed)
        raise TransitionRefused(
            f"the fulfillment request is {fo['request_status']}, not {expected}: it cannot be {action} now"
        )


# --- internals --------------------------------------------------------------------------


def _refuse_unless_fulfillable(fo: Mapping[str, Any], now: str, *, for_request: bool = False) -> None:
    status = fo["status"]
    if status == Status.ON_HOLD:
        held_for = ", ".join(hold["reason"] for hold in fo["holds"])
        raise TransitionRefused(f"the fulfillment order is ON_HOLD ({held_for}): release the hold first")
    if status == Status.SCHEDULED:
        raise TransitionRefused(f"the fulfillment order is SCHEDULED: it opens at {fo['fulfill_at']}")
    if status == Status.CLOSED:
        raise TransitionRefused("the fulfillment order is CLOSED: every line is already fulfilled")
    if status not in (Status.OPEN, Status.IN_PROGRESS):
        raise TransitionRefused(f"a fulfillment order that is {status} cannot be fulfilled")
    if not for_request and fo["request_status"] in WITH_SERVICE:
        raise TransitionRefused(
            f"the fulfillment request is {fo['request_status']} at fulfillment service "
            f"{fo['fulfillment_service']}: it ships this"
        )
    if fo["reservation_status"] == Reservation.PENDING:
        raise TransitionRefused(
            f"stock is not reserved yet at {_where(fo)}: inventory has not confirmed the reservation"
        )


def _requested_quantities(fo: Mapping[str, Any], lines: Sequence[LineQuantity] | None) -> dict[str, int]:
    remaining = {line["line_item_id"]: line["quantity"] - line["fulfilled_quantity"] for line in fo["line_items"]}
    if lines is None:
        return {line_id: left for line_id, left in remaining.items() if left > 0}
    if not lines:
        raise InvalidRequest("line_items", "name at least one line, or leave line_items out to fulfil them all")
    wanted: dict[str, int] = {}
    for index, line in enumerate(lines):
        if line.line_item_id not in remaining:
            raise InvalidRequest(
                f"line_items.{index}.line_item_id", f"{line.line_item_id!r} is not a line of this fulfillment order"
            )
        if line.line_item_id in wanted:
            raise InvalidRequest(f"line_items.{index}.line_item_id", f"{line.line_item_id!r} is listed twice")
        if line.quantity < 1 or line.quantity > remaining[line.line_item_id]:
            raise InvalidRequest(
                f"line_items.{index}.quantity",
                f"must be between 1 and {remaining[line.line_item_id]}, what remains to fulfil",
            )
        wanted[line.line_item_id] = line.quantity
    return wanted


def _progress_automatically(fo: Document, events: list[CloudEvent], now: str) -> None:
    """An open fulfillment order whose stock is secured ships at once when automatic (digital
    lines always are): itself, or through its fulfillment service's request."""
    if not fo.get("auto_fulfill") or fo["status"] != Status.OPEN or fo["reservation_status"] == Reservation.PENDING:
        return
    if fo.get("fulfillment_service"):
        if fo["request_status"] == RequestStatus.UNSUBMITTED:
            _submit(fo, events, "automatic fulfillment")
        return
    change = fulfil(fo, FulfillmentRequest(notify_customer=True), now)
    fo.clear()
    fo.update(change.document)
    events.extend(change.events)


def _submit(fo: Document, events: list[CloudEvent], message: str) -> None:
    fo["request_status"] = RequestStatus.SUBMITTED.value
    events.append(_request_event("fulfillment_request.submitted", fo, message))
    events.append(_to_service("fulfillment_service.fulfillment_requested", fo, message))


def _to_service(event_type: str, fo: Mapping[str, Any], message: str) -> CloudEvent:
    """What the location's fulfillment service reads on fulfillment.requests.v1 (keyed by its id)."""
    service = fo["fulfillment_service"]
    data = FulfillmentServiceRequest(
        fulfillment_order=_snapshot(fo),
        order=OrderSnapshot.model_validate(fo["order"]),
        fulfillment_service=service,
        message=message,
    )
    return new_event(SOURCE, event_type, service, data)


def _working_status(fo: Mapping[str, Any], now: str) -> Status:
    """What a fulfillment order with no hold is: scheduled for later, partly shipped, or open."""
    if fo.get("fulfill_at") and _at(fo["fulfill_at"]) > _at(now):
        return Status.SCHEDULED
    return Status.IN_PROGRESS if _fulfilled_any(fo) else Status.OPEN


def _fulfilled_any(fo: Mapping[str, Any]) -> bool:
    return any(line["fulfilled_quantity"] for line in fo["line_items"])


def _fulfillment(fo: Mapping[str, Any], fulfillment_id: str) -> dict[str, Any]:
    found: dict[str, Any] | None = fo["fulfillments"].get(fulfillment_id)
    if found is None:
        raise LookupError(f"fulfillment {fulfillment_id} is not part of fulfillment order {fo['id']}")
    return found


def _where(fo: Mapping[str, Any]) -> str:
    return str(fo.get("location_name") or fo["location_id"])


def _copy(fo: Document, now: str) -> Document:
    copied = {
        **fo,
        "holds": [dict(hold) for hold in fo["holds"]],
        "line_items": [dict(line) for line in fo["line_items"]],
        "fulfillments": {key: dict(value) for key, value in fo["fulfillments"].items()},
        "updated_at": now,
    }
    return copied


def _changed(fo: Document, events: list[CloudEvent]) -> Change:
    fo.update(derived_fields(fo))
    return Change(fo, events)


def derived_fields(fo: Mapping[str, Any]) -> Document:
    """The fields the queries filter and sort by, kept in step with the fulfillment order on every
    write. Each is one indexable value (see services/fulfillment/store.py INDEXES): times the
    sweep ranges over are epoch seconds (the embedded store scans for a filter on an RFC 3339
    string), and the listing's order is one string, so that a page resumes after a single value."""
    sort_fulfill_by = fo.get("fulfill_by") or NO_DEADLINE
    upsell = [hold.get("release_at") for hold in fo["holds"] if hold["reason"] == HoldReason.POST_PURCHASE_UPSELL]
    upsell_release_at = min((at for at in upsell if at), default=None) if fo["status"] not in TERMINAL else None
    scheduled = fo["status"] == Status.SCHEDULED and fo.get("fulfill_at")
    return {
        "sort_fulfill_by": sort_fulfill_by,
        "sort_key": sort_key(sort_fulfill_by, fo["created_at"], fo["id"]),
        "upsell_release_at": upsell_release_at,
        "upsell_release_epoch": epoch(upsell_release_at) if upsell_release_at else None,
        "opens_at_epoch": epoch(fo["fulfill_at"]) if scheduled else None,
        "out_of_stock": is_out_of_stock_hold(fo),
        "skus": sorted({line["sku"] for line in fo["line_items"]}),
    }


def sort_key(fulfill_by: str, created_at: str, fo_id: str) -> str:
    """The listing's order (fulfill-by deadline, then creation, then id) as one string that sorts
    the same way: both times are RFC 3339 in UTC with microseconds, so of one width. It starts with
    a letter, because the embedded store takes a filter value that starts like a date for a date."""
    return f"k{fulfill_by}|{created_at}|{fo_id}"


def epoch(moment: str) -> float:
    return _at(moment).timestamp()


def fulfillment_id_for(fulfillment_order_id: str, number: int) -> str:
    """A fulfillment's id names its fulfillment order, so `/fulfillments/{id}` finds it by the
    fulfillment order's key (no query over every fulfillment order's shipments); deterministic, so
    that the same shipment applied twice has the same id."""
    return f"{fulfillment_order_id}_{number}"


def fulfillment_order_of(fulfillment_id: str) -> str | None:
    """The fulfillment order a fulfillment id names, or None for an id not of that form (made
    before fulfillment ids named their fulfillment order: see services/fulfillment/upgrade.py)."""
    fulfillment_order_id, _, number = fulfillment_id.rpartition("_")
    return fulfillment_order_id if fulfillment_order_id and number.isdigit() else None


def _snapshot(fo: Mapping[str, Any]) -> FulfillmentOrderSnapshot:
    return FulfillmentOrderSnapshot.model_validate(fo)


def _fo_event(
    event_type: str, fo: Mapping[str, Any], reason: str, previous_location_id: str | None = None
) -> CloudEvent:
    data = FulfillmentOrderChanged(
        fulfillment_order=_snapshot(fo),
        order=OrderSnapshot.model_validate(fo["order"]),
        reason=reason,
        previous_location_id=previous_location_id,
    )
    return new_event(SOURCE, event_type, fo["order_id"], data)


def _request_event(
    event_type: str, fo: Mapping[str, Any], message: str, reason: RejectionReason | None = None
) -> CloudEvent:
    """fulfillment_request.* and cancellation_request.*: the request as it is now."""
    data = FulfillmentRequestChanged(
        fulfillment_order=_snapshot(fo),
        order=OrderSnapshot.model_validate(fo["order"]),
        fulfillment_service=fo["fulfillment_service"],
        message=message,
        reason=reason,
    )
    return new_event(SOURCE, event_type, fo["order_id"], data)


def _fulfillment_event(event_type: str, fo: Mapping[str, Any], fulfillment_id: str) -> CloudEvent:
    data = FulfillmentChanged(
        fulfillment=FulfillmentSnapshot.model_validate(fo["fulfillments"][fulfillment_id]),
        fulfillment_order=_snapshot(fo),
        order=OrderSnapshot.model_validate(fo["order"]),
    )
    return new_event(SOURCE, event_type, fo["order_id"], data)


def _at(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def later(now: str, seconds: float) -> str:
    return (_at(now) + timedelta(seconds=seconds)).astimezone(UTC).isoformat(timespec="microseconds")


def normalise_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, like every stored time: strings then sort as times."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")
