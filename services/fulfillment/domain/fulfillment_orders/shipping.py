"""Fulfilling: shipping all or some of what remains, tracking, shipping labels, and cancelling a
shipment (Shopify's "Fulfilling orders" and "Canceling fulfillments").

A fulfillment (a shipment, or a delivery of digital goods) takes lines out of one fulfillment
order; shipping everything closes it. Its id names the fulfillment order (`fulfillment_id_for`).
Stock must be reserved first, and a fulfillment order its fulfillment service has the request
of is shipped by that service (see service_requests.py), not by the merchant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from shared.catalog import WITH_SERVICE, FulfillmentLine, FulfillmentSnapshot, LabelStatus, RequestStatus, Tracking

from .announcements import fo_event, fulfillment_event
from .model import (
    FulfillmentOrder,
    FulfillmentRequest,
    InvalidRequest,
    LineQuantity,
    Reservation,
    Status,
    Transition,
    TransitionRefused,
)


def fulfil(fo: FulfillmentOrder, request: FulfillmentRequest, now: str, max_parcels: int | None = None) -> Transition:
    """Ship all remaining lines, or some of them (a partial shipment: the rest stays open, and
    one in packing stays in packing), in at most `max_parcels` parcels (None: no limit)."""
    refuse_unless_fulfillable(fo)
    if max_parcels is not None:
        check_parcels(request.tracking, max_parcels, request.parcels_field)
    return ship(fo, request, now)


def check_parcels(tracking: Tracking, max_parcels: int, field_name: str = "tracking.numbers") -> None:
    """A shipment carries one or more parcels, each with its id (tracking number): at most
    `max_parcels` (the shop's setting)."""
    if len(tracking.numbers) > max_parcels:
        raise InvalidRequest(
            field_name,
            f"a shipment carries at most {max_parcels} parcel ids (tracking numbers); {len(tracking.numbers)} given",
        )


def ship(fo: FulfillmentOrder, request: FulfillmentRequest, now: str) -> Transition:
    """A shipment, by the merchant or the fulfillment service: the one rule for both."""
    quantities = _requested_quantities(fo, request.lines)
    fulfillment_id = fulfillment_id_for(fo.id, len(fo.fulfillments) + 1)
    fulfillment = FulfillmentSnapshot(
        id=fulfillment_id,
        order_id=fo.order_id,
        fulfillment_order_id=fo.id,
        location_id=fo.location_id,
        status="SUCCESS",
        line_items=[
            FulfillmentLine(
                line_item_id=line.line_item_id,
                sku=line.sku,
                quantity=quantities[line.line_item_id],
                digital_asset_url=line.digital_asset_url,
            )
            for line in fo.line_items
            if quantities.get(line.line_item_id)
        ],
        tracking=request.tracking,
        notify_customer=request.notify_customer,
        label_status=request.label,
        created_at=now,
        updated_at=now,
    )
    lines = tuple(
        replace(line, fulfilled_quantity=line.fulfilled_quantity + quantities.get(line.line_item_id, 0))
        for line in fo.line_items
    )
    everything = all(line.remaining <= 0 for line in lines)
    fo = replace(
        fo,
        line_items=lines,
        fulfillments={**fo.fulfillments, fulfillment_id: fulfillment},
        status=Status.CLOSED if everything else Status.IN_PROGRESS,
        request_status=RequestStatus.CLOSED if everything and fo.request_status in WITH_SERVICE else fo.request_status,
        updated_at=now,
    )
    events = [fulfillment_event("fulfillment.created", fo, fulfillment_id)]
    if everything:
        events.append(fo_event("fulfillment_order.closed", fo, "every line is fulfilled"))
    return Transition(fo, tuple(events))


def update_tracking(
    fo: FulfillmentOrder,
    fulfillment_id: str,
    tracking: Tracking,
    notify_customer: bool,
    now: str,
    max_parcels: int | None = None,
) -> Transition:
    """Add or change a shipment's tracking after the fact (it replaces what was there)."""
    if max_parcels is not None:
        check_parcels(tracking, max_parcels)
    fulfillment = fo.fulfillment(fulfillment_id)
    if fulfillment.status == "CANCELLED":
        raise TransitionRefused("the fulfillment is cancelled: its tracking can no longer change")
    changed = fulfillment.model_copy(
        update={"tracking": tracking, "notify_customer": notify_customer, "updated_at": now}
    )
    return _fulfillment_changed(fo, changed, "fulfillment.tracking_updated", now)


def void_label(fo: FulfillmentOrder, fulfillment_id: str, now: str) -> Transition:
    """Void the shipment's purchased shipping label (needed before the shipment can be cancelled)."""
    fulfillment = fo.fulfillment(fulfillment_id)
    if fulfillment.label_status != LabelStatus.PURCHASED:
        raise TransitionRefused(
            f"the fulfillment has no purchased shipping label to void (label {fulfillment.label_status})"
        )
    changed = fulfillment.model_copy(update={"label_status": LabelStatus.VOIDED, "updated_at": now})
    return _fulfillment_changed(fo, changed, "fulfillment.label_voided", now)


def cancel_fulfillment(fo: FulfillmentOrder, fulfillment_id: str, now: str) -> Transition:
    """Undo a shipment: its lines go back to unfulfilled, its stock back to reserved."""
    fulfillment = fo.fulfillment(fulfillment_id)
    if fulfillment.status == "CANCELLED":
        raise TransitionRefused("the fulfillment is already cancelled")
    if fulfillment.label_status == LabelStatus.PURCHASED:
        raise TransitionRefused("the fulfillment has a purchased shipping label: void the label before cancelling")
    if fo.status == Status.CANCELLED:
        raise TransitionRefused("the fulfillment order is cancelled: its stock was released, the shipment stays")
    returned = {line.line_item_id: line.quantity for line in fulfillment.line_items}
    lines = tuple(
        replace(line, fulfilled_quantity=line.fulfilled_quantity - returned.get(line.line_item_id, 0))
        for line in fo.line_items
    )
    fo = replace(fo, line_items=lines)
    if fo.status != Status.ON_HOLD:
        fo = replace(fo, status=fo.working_status(now))
    changed = fulfillment.model_copy(update={"status": "CANCELLED", "updated_at": now})
    return _fulfillment_changed(fo, changed, "fulfillment.cancelled", now)


def cancel_fulfillments(fo: FulfillmentOrder, now: str) -> Transition:
    """Undo every shipment of it still standing (the order shows unfulfilled again): as
    `cancel_fulfillment` on each, refused as a whole when one of them is refused (a purchased
    label must be voided first)."""
    standing = sorted(f.id for f in fo.fulfillments.values() if f.status != "CANCELLED")
    if not standing:
        raise TransitionRefused("nothing of it is fulfilled: it has no fulfillment to cancel")
    done = cancel_fulfillment(fo, standing[0], now)
    for fulfillment_id in standing[1:]:
        done = done.then(cancel_fulfillment(done.fo, fulfillment_id, now))
    return done


def refuse_unless_fulfillable(fo: FulfillmentOrder, *, for_request: bool = False) -> None:
    """Why this fulfillment order cannot ship now, if it cannot (`for_request`: by its service).
    The merchant may ship an INCOMPLETE one (the service gave up) themselves."""
    if fo.status == Status.ON_HOLD:
        held_for = ", ".join(hold.reason for hold in fo.holds)
        raise TransitionRefused(f"the fulfillment order is ON_HOLD ({held_for}): release the hold first")
    if fo.status == Status.SCHEDULED:
        raise TransitionRefused(f"the fulfillment order is SCHEDULED: it opens at {fo.fulfill_at}")
    if fo.status == Status.CLOSED:
        raise TransitionRefused("the fulfillment order is CLOSED: every line is already fulfilled")
    shippable = (Status.OPEN, Status.IN_PROGRESS) + (() if for_request else (Status.INCOMPLETE,))
    if fo.status not in shippable:
        raise TransitionRefused(f"a fulfillment order that is {fo.status} cannot be fulfilled")
    if not for_request and fo.request_status in WITH_SERVICE:
        raise TransitionRefused(
            f"the fulfillment request is {fo.request_status} at fulfillment service "
            f"{fo.fulfillment_service}: it ships this"
        )
    if fo.reservation_status == Reservation.PENDING:
        raise TransitionRefused(f"stock is not reserved yet at {fo.where}: inventory has not confirmed the reservation")


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


def _fulfillment_changed(
    fo: FulfillmentOrder, fulfillment: FulfillmentSnapshot, event_type: str, now: str
) -> Transition:
    fo = replace(fo, fulfillments={**fo.fulfillments, fulfillment.id: fulfillment}, updated_at=now)
    return Transition(fo, (fulfillment_event(event_type, fo, fulfillment.id),))


def _requested_quantities(fo: FulfillmentOrder, lines: Sequence[LineQuantity] | None) -> dict[str, int]:
    remaining = {line.line_item_id: line.remaining for line in fo.line_items}
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
