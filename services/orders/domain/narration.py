"""What each event says on the order's timeline, as the merchant reads it: one line (`message`)
and the facts that matter (`details`): hold reason and note, a rejection's reason and the
service's message, the merchant's note to the service, tracking numbers, what moved where, and
the bulk job that did it when the event says so. Who did it is the event's `actor`.

Pure functions of an event and its data (the catalog model of its type); an event type this
module has no words for reads as its type, humanised, with the details its data shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import ValidationError

from services.orders.domain.model import TimelineDetail
from shared.catalog import (
    Contract,
    FinancialStatus,
    FulfillmentChanged,
    FulfillmentOrderChanged,
    FulfillmentRequestChanged,
    HoldReason,
    InventoryReservation,
    InventoryReservationFailed,
    NotificationOutcome,
    RejectionReason,
    StockLine,
    Tracking,
    orders,
)
from shared.events import CloudEvent, EnvelopeError
from shared.text import one_line

Details = dict[str, TimelineDetail]

QUOTE_LIMIT = 200
"""How much of a note or a service's message the one-line message quotes (details keep it whole)."""


@dataclass(frozen=True)
class Narration:
    """What an event says on the timeline."""

    message: str
    details: Mapping[str, TimelineDetail] = field(default_factory=dict)


def narrate(event: CloudEvent, data: Contract | None = None) -> Narration:
    """The event as the merchant reads it. `data`: its data as its catalog model, when the caller
    has it already (else it is read from the event; data that does not read gives the type only)."""
    if data is None:
        try:
            data = event.payload()
        except (ValidationError, EnvelopeError):
            return Narration(humanised(event.type))
    kind = event.type
    match data:
        case orders.OrderCreated() | orders.OrderPaid() | orders.OrderPostPurchaseCompleted():
            told = _order_announced(kind, data)
        case orders.OrderCancelled():
            told = _order_cancelled(data)
        case orders.OrderFulfillmentStatusChanged():
            told = _status_changed(data)
        case orders.OrderEdited():
            told = Narration("Order edited: " + "; ".join(data.changes), {"changes": list(data.changes)})
        case orders.OrderWaitingChanged():
            told = Narration("Marked waiting: kept out of the pack run" if data.order.waiting else "No longer waiting")
        case FulfillmentOrderChanged():
            told = _fulfillment_order(kind, data)
        case FulfillmentChanged():
            told = _fulfillment(kind, data)
        case FulfillmentRequestChanged():
            told = _request(kind, data)
        case InventoryReservation():
            told = _stock(kind, data)
        case InventoryReservationFailed():
            told = _stock_short(data)
        case NotificationOutcome():
            told = _notification(kind, data)
        case _:
            told = Narration(humanised(kind))
    details = {key: value for key, value in told.details.items() if value not in ("", None, [])}
    if bulk_job_id := getattr(data, "bulk_job_id", None):
        details["bulk_job_id"] = bulk_job_id
    return Narration(told.message, details)


def humanised(event_type: str) -> str:
    """An event type as words: "fulfillment_order.hold_released" -> "Fulfillment order hold released"."""
    words = event_type.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# --- the orders service's own events ---------------------------------------------------------


def _order_announced(
    event_type: str, data: orders.OrderCreated | orders.OrderPaid | orders.OrderPostPurchaseCompleted
) -> Narration:
    order = data.order
    message = {
        "order.created": f"Order placed ({_words(order.financial_status)})",
        "order.paid": "Order marked as paid",
        "order.post_purchase_completed": "Post-purchase offer closed: the order may be fulfilled",
    }.get(event_type, humanised(event_type))
    details: Details = {"financial_status": order.financial_status.value}
    if order.number is not None:
        details["number"] = order.number
    return Narration(message, details)


def _order_cancelled(data: orders.OrderCancelled) -> Narration:
    order = data.order
    total = sum((line.unit_price * line.quantity for line in order.line_items), Decimal(0))
    amount = f"{total.quantize(Decimal('0.01'))} {order.currency}"
    money = _money_after_cancelling(order.financial_status, data.refund, data.refunded, amount)
    restock = "items restocked" if data.restock else "items not restocked"
    notify = "customer notified" if data.notify_customer else "customer not notified"
    details: Details = {
        "reason": data.reason,
        "refund": data.refund,
        "refunded": data.refunded,
        "restock": data.restock,
        "notify_customer": data.notify_customer,
    }
    return Narration(f"Order cancelled (reason: {_words(data.reason)}): {money}; {restock}; {notify}", details)


def _money_after_cancelling(status: FinancialStatus, refund: str, refunded: bool, amount: str) -> str:
    """What happened to the money, whatever was asked: an order never paid has nothing to refund."""
    if status in (FinancialStatus.PENDING, FinancialStatus.VOIDED):
        return "nothing was charged, so nothing is refunded"
    if refunded:
        return f"{amount} refunded"
    if refund == "later":
        return f"{amount} to be refunded later"
    return "not refunded"


def _status_changed(data: orders.OrderFulfillmentStatusChanged) -> Narration:
    status = data.fulfillment_status
    return Narration(f"Fulfillment status is now {_words(status)}", {"fulfillment_status": status.value})


# --- fulfillment ----------------------------------------------------------------------------

_FULFILLMENT_ORDER_MESSAGES = {
    "fulfillment_order.created": "Fulfillment order created",
    "fulfillment_order.scheduled": "Fulfillment scheduled",
    "fulfillment_order.opened": "Fulfillment order opened",
    "fulfillment_order.hold_released": "Hold released",
    "fulfillment_order.fulfill_by_changed": "Fulfill-by deadline changed",
    "fulfillment_order.cancelled": "Fulfillment order cancelled",
    "fulfillment_order.closed": "Fulfillment order closed",
    "fulfillment_order.incomplete": "Fulfillment order incomplete",
    "fulfillment_order.reset_to_unfulfilled": "Reset to unfulfilled: the lines are back with the merchant",
}


def _fulfillment_order(event_type: str, data: FulfillmentOrderChanged) -> Narration:
    fo = data.fulfillment_order
    details: Details = {
        "fulfillment_order_id": fo.id,
        "location_id": fo.location_id or "",
        "status": fo.status.value,
        "reason": data.reason,
    }
    if event_type == "fulfillment_order.placed_on_hold" and fo.holds:
        hold = fo.holds[-1]  # the hold just placed: holds are kept in the order they were placed
        details |= {"hold_reason": hold.reason.value, "hold_note": hold.note}
        message = f"Placed on hold: {_hold_words(hold.reason)}{_quoted(hold.note)}"
        return Narration(message, details)
    if event_type == "fulfillment_order.hold_released":
        released = [reason for reason in HoldReason if f"{reason.value} hold released" in data.reason]
        details |= {"released_holds": [reason.value for reason in released],
                    "holds_kept": [hold.reason.value for hold in fo.holds]}  # fmt: skip
        if released:  # the merchant released them: their reasons say it all
            return Narration(f"Hold released: {', '.join(_hold_words(reason) for reason in released)}", details)
    if event_type == "fulfillment_order.moved":
        details["previous_location_id"] = data.previous_location_id or ""
        where = f" from {data.previous_location_id}" if data.previous_location_id else ""
        return Narration(f"Fulfillment order moved{where} to {fo.location_id or 'no location'}", details)
    if event_type == "fulfillment_order.fulfill_by_changed":
        details["fulfill_by"] = fo.fulfill_by or ""
    if event_type == "fulfillment_order.scheduled":
        details["fulfill_at"] = fo.fulfill_at or ""
    if data.warning:
        details["warning"] = data.warning
    message = _FULFILLMENT_ORDER_MESSAGES.get(event_type, humanised(event_type))
    if event_type == "fulfillment_order.reset_to_unfulfilled" and data.warning:
        return Narration(f"{message}. Warning: {one_line(data.warning)}", details)
    if event_type == "fulfillment_order.created":
        message += f" at {fo.location_id}" if fo.location_id else " without a location"
        if fo.holds:
            message += f" (on hold: {', '.join(_hold_words(hold.reason) for hold in fo.holds)})"
            details["holds"] = [hold.reason.value for hold in fo.holds]
    return Narration(f"{message}: {one_line(data.reason)}" if data.reason else message, details)


def _fulfillment(event_type: str, data: FulfillmentChanged) -> Narration:
    shipment = data.fulfillment
    units = sum(line.quantity for line in shipment.line_items)
    digital = all(line.digital_asset_url for line in shipment.line_items) and bool(shipment.line_items)
    tracking = _tracking_words(shipment.tracking)
    details: Details = {
        "fulfillment_id": shipment.id,
        "fulfillment_order_id": shipment.fulfillment_order_id,
        "location_id": shipment.location_id or "",
        "items": [f"{line.sku} x {line.quantity}" for line in shipment.line_items],
        "tracking_company": shipment.tracking.company or "",
        "tracking_numbers": list(shipment.tracking.numbers),
        "tracking_urls": [str(url) for url in shipment.tracking.urls],
        "notify_customer": shipment.notify_customer,
    }
    if event_type == "fulfillment.created":
        what = f"{_count(units, 'digital item')} delivered" if digital else f"{_count(units, 'item')} fulfilled"
        where = f" from {shipment.location_id}" if shipment.location_id and not digital else ""
        message = f"{what}{where}" + (f", tracking {tracking}" if tracking else "")
        if shipment.notify_customer and not digital:
            message += " (customer notified)"
    elif event_type == "fulfillment.tracking_updated":
        message = f"Tracking updated: {tracking or 'no tracking'}"
        if shipment.notify_customer:
            message += " (customer notified)"
    elif event_type == "fulfillment.cancelled":
        message = f"Fulfillment cancelled: {_count(units, 'item')} back to unfulfilled"
    elif event_type == "fulfillment.label_voided":
        message = "Shipping label voided"
        details["label_status"] = shipment.label_status.value
    else:
        message = humanised(event_type)
    return Narration(message, details)


_REQUEST_MESSAGES = {
    "fulfillment_request.submitted": "Fulfillment requested from {service}",
    "fulfillment_request.accepted": "Fulfillment request accepted by {service}",
    "fulfillment_request.rejected": "Fulfillment request rejected by {service}",
    "cancellation_request.submitted": "Cancellation requested from {service}",
    "cancellation_request.accepted": "Cancellation request accepted by {service}",
    "cancellation_request.rejected": "Cancellation request rejected by {service}",
    "fulfillment_request.withdrawn": "Fulfillment request withdrawn from {service}",
    "fulfillment_request.progress_reported": "Progress reported by {service}",
}

_FROM_THE_MERCHANT = (
    "fulfillment_request.submitted",
    "cancellation_request.submitted",
    "fulfillment_request.withdrawn",
)
"""Requests whose message is the merchant's note to the service; in every other, it is the service's."""


def _request(event_type: str, data: FulfillmentRequestChanged) -> Narration:
    service = data.fulfillment_service
    template = _REQUEST_MESSAGES.get(event_type)
    message = template.format(service=service) if template else f"{humanised(event_type)} ({service})"
    if data.reason is not None:
        message += f": {_rejection_words(data.reason)}"
    message += _quoted(data.message)
    fo = data.fulfillment_order
    details: Details = {
        "fulfillment_order_id": fo.id,
        "location_id": fo.location_id or "",
        "fulfillment_service": service,
        "request_status": fo.request_status.value,
        "rejection_reason": data.reason.value if data.reason else "",
    }
    details["merchant_note" if event_type in _FROM_THE_MERCHANT else "service_message"] = data.message
    return Narration(message, details)


# --- inventory and notifications -------------------------------------------------------------

_STOCK_MESSAGES = {
    "inventory.reserved": "Stock reserved at {location}",
    "inventory.released": "Reserved stock released at {location}",
    "inventory.committed": "Stock committed at {location} (it left with a shipment)",
    "inventory.restocked": "Restocked at {location}",
}


def _stock(event_type: str, data: InventoryReservation) -> Narration:
    template = _STOCK_MESSAGES.get(event_type)
    what = template.format(location=data.location_id) if template else humanised(event_type)
    details: Details = {
        "fulfillment_order_id": data.fulfillment_order_id,
        "location_id": data.location_id,
        "items": _lines(data.lines),
    }
    return Narration(f"{what}: {', '.join(_lines(data.lines))}" if data.lines else what, details)


def _stock_short(data: InventoryReservationFailed) -> Narration:
    shortages = [f"{short.sku} ({short.requested} asked, {short.available} available)" for short in data.shortages]
    message = f"Stock could not be reserved at {data.location_id}"
    details: Details = {
        "fulfillment_order_id": data.fulfillment_order_id,
        "location_id": data.location_id,
        "items": _lines(data.lines),
        "shortages": shortages,
    }
    return Narration(f"{message}: {', '.join(shortages)}" if shortages else message, details)


def _notification(event_type: str, data: NotificationOutcome) -> Narration:
    sent = data.notification
    email = _words(sent.type).capitalize() + " email"
    if event_type == "notification.sent":
        message = f"{email} sent to the customer"
    elif event_type == "notification.failed":
        message = f"{email} to the customer failed" + (f": {_clipped(sent.error)}" if sent.error else "")
    else:
        message = f"{humanised(event_type)}: {email}"
    details: Details = {
        "notification_id": sent.id,
        "email": sent.type,
        "subject": sent.subject,
        "error": one_line(sent.error or ""),
    }
    return Narration(message, details)


# --- words -----------------------------------------------------------------------------------

_HOLD_WORDS = {HoldReason.INVENTORY_OUT_OF_STOCK: "out of stock",
               HoldReason.POST_PURCHASE_UPSELL: "post-purchase offer pending"}  # fmt: skip
_REJECTION_WORDS = {RejectionReason.INVENTORY_OUT_OF_STOCK: "out of stock"}


def _words(value: str) -> str:
    """A status or code as words: "PARTIALLY_FULFILLED" -> "partially fulfilled"."""
    return str(value).replace("_", " ").lower()


def _hold_words(reason: HoldReason) -> str:
    return _HOLD_WORDS.get(reason, _words(reason))


def _rejection_words(reason: RejectionReason) -> str:
    return _REJECTION_WORDS.get(reason, _words(reason))


def _clipped(text: str) -> str:
    text = one_line(text)
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 1].rstrip() + "…"


def _quoted(text: str) -> str:
    """A note or a service's message as the one-line message quotes it: " — 'we ran out'"."""
    return f" — '{_clipped(text)}'" if text.strip() else ""


def _tracking_words(tracking: Tracking) -> str:
    """The carrier and tracking numbers: "UPS 1Z999AA10123456784, 1Z999AA10123456785" ("" for none)."""
    return " ".join(part for part in (tracking.company or "", ", ".join(tracking.numbers)) if part)


def _count(quantity: int, noun: str) -> str:
    return f"{quantity} {noun}{'' if quantity == 1 else 's'}"


def _lines(lines: Sequence[StockLine]) -> list[str]:
    return [f"{line.sku} x {line.quantity}" for line in lines]
