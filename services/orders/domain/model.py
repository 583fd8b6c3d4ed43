"""The order's rules: placing, paying, cancelling, and what its fulfillment status shows.

Pure functions over the order document: no I/O. Each returns the order as it should be now
and the events that say so, or raises OrderRuleViolation (or InvalidOrder) with the reason.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared import clock
from shared.aggregates import Change, Document
from shared.catalog import (
    WITH_SERVICE,
    DisplayFulfillmentStatus,
    FinancialStatus,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    HoldReason,
    OrderCancelled,
    OrderCreated,
    OrderFulfillmentStatusChanged,
    OrderPaid,
    OrderPostPurchaseCompleted,
    OrderSnapshot,
    RequestStatus,
)
from shared.clock import NO_DEADLINE as NO_DEADLINE  # the sort key of an order without a deadline
from shared.events import CloudEvent, new_event
from shared.rules import RuleViolation

SOURCE = "orders"

# Active ISO 4217 currency codes (funds and test codes left out): a typo such as "SKR" for
# "SEK" is refused up front rather than discovered when the money moves.
CURRENCIES = frozenset(
    {
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
        "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
        "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
        "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
        "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
        "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
        "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
        "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC",
        "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
        "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
    }
)  # fmt: skip

# Every event about an order carries its snapshot, the largest ones (a fulfillment of every line)
# about twice over. Bounding the snapshot keeps each event well under what a real Kafka cluster
# takes by default (message.max.bytes, 1 MB): an order that could not be announced must be refused
# at the door, not stall the pipeline later.
MAX_ORDER_BYTES = 256_000

# The listing's sort orders, each one stored field whose value orders the orders totally (the
# order id breaks ties), so that a page can start after any order with one indexed range
# condition (keyset pagination) instead of an $or over several fields, which no store answers
# from an index. The "~" keeps the value from looking like a date to the embedded store, which
# would otherwise compare it on a slow path that reads every document.
LIST_KEYS = {"fulfill_by": "sort_fulfill_by", "created_at": "sort_created_at"}
LIST_KEY_PREFIX = "~"

# Notes other services' events leave on the order (inventory, notifications) are added in one
# write each without reading the order: each under its event id in this map, folded into the
# timeline by the next write of the whole order. timeline_of() shows both as one timeline.
TIMELINE_NOTES = "timeline_notes"

OPEN_FULFILLMENT_ORDER_STATUSES = frozenset(
    {
        FulfillmentOrderStatus.OPEN,
        FulfillmentOrderStatus.SCHEDULED,
        FulfillmentOrderStatus.ON_HOLD,
        FulfillmentOrderStatus.IN_PROGRESS,
    }
)


class OrderRuleViolation(RuleViolation):
    """The order is not in a state that allows this action; the message says why."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a merchant's request: which field, and why."""

    field: str
    reason: str


class InvalidOrder(ValueError):
    """A new order that breaks a merchant-facing rule; `problems` name each field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems


class Refund(StrEnum):
    NOW = "now"
    LATER = "later"
    NONE = "none"


class CancelReason(StrEnum):
    CUSTOMER = "customer"
    FRAUD = "fraud"
    INVENTORY = "inventory"
    DECLINED = "declined"
    OTHER = "other"


# --- placing ----------------------------------------------------------------------------


def check_new_order(request: dict[str, Any]) -> list[Problem]:
    """The rules a well-formed order can still break, each named by its field.

    A digital line (downloads, gift cards) ships nothing and points at its asset; a line
    that ships needs somewhere to go; the currency is a real ISO 4217 code.
    """
    problems: list[Problem] = []
    if request.get("currency") not in CURRENCIES:
        problems.append(Problem("currency", f"{request.get('currency')!r} is not an ISO 4217 currency code"))
    for index, line in enumerate(request.get("line_items", [])):
        field = f"line_items.{index}"
        digital = line.get("digital_asset_url") is not None
        if digital and line.get("requires_shipping", True):
            reason = "a line with a digital_asset_url is digital and must have requires_shipping false"
            problems.append(Problem(f"{field}.requires_shipping", reason))
        if not digital and not line.get("requires_shipping", True):
            reason = "a line that requires no shipping is digital and needs a digital_asset_url"
            problems.append(Problem(f"{field}.digital_asset_url", reason))
    if any(line.get("requires_shipping", True) for line in request.get("line_items", [])):
        address = request.get("shipping_address")
        if address is None:
            problems.append(Problem("shipping_address", "required when a line requires shipping"))
        else:
            for part in ("address1", "city", "country_code"):
                if not address.get(part):
                    problems.append(Problem(f"shipping_address.{part}", "required when a line requires shipping"))
    return problems


def place(request: dict[str, Any], now: str, order_id: str | None = None) -> Change:
    """A new order; one placed already paid is announced as created and then paid."""
    problems = check_new_order(request)
    if problems:
        raise InvalidOrder(problems)
    order_id = order_id or str(uuid.uuid4())
    lines = [{"id": str(uuid.uuid4()), **line} for line in request["line_items"]]
    order: Document = {
        **request,
        "id": order_id,
        "line_items": lines,
        "fulfillment_status": DisplayFulfillmentStatus.UNFULFILLED.value,
        "fulfill_by": None,
        "fulfill_by_sort": NO_DEADLINE,
        "created_at": now,
        "updated_at": now,
        "paid_at": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "cancellation": None,
        "fulfillment_orders": {},
        "timeline": [],
    }
    order.update(list_keys(order))
    size = len(snapshot(order).model_dump_json())
    if size > MAX_ORDER_BYTES:
        reason = (
            f"the order is {size} bytes as an event, over the limit of {MAX_ORDER_BYTES} bytes: "
            "use fewer lines or shorter texts and URLs"
        )
        raise InvalidOrder([Problem("line_items", reason)])
    events = [_order_event("order.created", order)]
    if order["financial_status"] == FinancialStatus.PAID:
        order["paid_at"] = now
        events.append(_order_event("order.paid", order))
    return _emit(order, events, now)


# --- paying and cancelling ----------------------------------------------------------------


def pay(order: Document, now: str) -> Change | None:
    """Mark a pending order paid. Paying a paid order again is a no-op, not a second event."""
    if order.get("cancelled_at"):
        raise OrderRuleViolation("the order is cancelled and cannot be paid")
    if order["financial_status"] == FinancialStatus.PAID:
        return None
    if order["financial_status"] != FinancialStatus.PENDING:
        raise OrderRuleViolation(f"an order that is {order['financial_status']} cannot be paid")
    order = {**order, "financial_status": FinancialStatus.PAID.value, "paid_at": now, "updated_at": now}
    return _emit(order, [_order_event("order.paid", order)], now)


def cancel(
    order: Document, *, refund: Refund, restock: bool, notify_customer: bool, reason: CancelReason, now: str
) -> Change:
    """Cancel the order, as merchants expect: money is only refunded if it was taken.

    A paid order refunded now becomes refunded; one refunded later (or not at all) stays
    paid until that happens elsewhere. An order never paid is voided: there is nothing to
    refund, whatever was asked. The event says what was asked and what was done.
    """
    if order.get("cancelled_at"):
        raise OrderRuleViolation(f"the order was already cancelled at {order['cancelled_at']}")
    if order.get("fulfillment_status") == DisplayFulfillmentStatus.FULFILLED:
        raise OrderRuleViolation("the order is fully fulfilled and cannot be cancelled; cancel its fulfillments first")
    financial_status = FinancialStatus(order["financial_status"])
    was_paid = financial_status in (FinancialStatus.PAID, FinancialStatus.PARTIALLY_REFUNDED)
    refunded = was_paid and refund == Refund.NOW
    if refunded:
        financial_status = FinancialStatus.REFUNDED
    elif financial_status == FinancialStatus.PENDING:
        financial_status = FinancialStatus.VOIDED
    cancellation = {"refund": refund.value, "refunded": refunded, "restock": restock,
                    "notify_customer": notify_customer, "reason": reason.value}  # fmt: skip
    order = {**order, "financial_status": financial_status.value, "cancelled_at": now, "cancel_reason": reason.value,
             "cancellation": cancellation, "updated_at": now}  # fmt: skip
    cancelled = OrderCancelled(order=snapshot(order), refund=refund.value, refunded=refunded, restock=restock,
                               notify_customer=notify_customer, reason=reason.value)  # fmt: skip
    event = new_event(SOURCE, "order.cancelled", order["id"], cancelled)
    return _emit(order, [event], now)


def complete_post_purchase(order: Document, now: str) -> Change:
    """The post-purchase upsell window closed: fulfillment may release its upsell hold."""
    if order.get("cancelled_at"):
        raise OrderRuleViolation("the order is cancelled")
    if not order.get("post_purchase_pending"):
        raise OrderRuleViolation("the order has no post-purchase offer pending")
    order = {**order, "post_purchase_pending": False, "updated_at": now}
    return _emit(order, [_order_event("order.post_purchase_completed", order)], now)


# --- what fulfillment tells us ---------------------------------------------------------------


def record_fulfillment_order(
    order: Document, event: CloudEvent, now: str, incoming: FulfillmentOrderSnapshot | None = None
) -> Change:
    """Keep the latest snapshot of one of the order's fulfillment orders and re-derive the
    order's display fulfillment status and fulfill-by deadline from all of them. `incoming`: the
    snapshot the event carries, where the caller has it validated already."""
    if incoming is None:
        if not event.data.get("fulfillment_order"):
            return record_on_timeline(order, event, now)
        incoming = FulfillmentOrderSnapshot.model_validate(event.data["fulfillment_order"])
    known = dict(order.get("fulfillment_orders", {}))
    previous = known.get(incoming.id)
    if previous is None or not _is_older(incoming.updated_at, previous["updated_at"]):
        known[incoming.id] = incoming.model_dump(mode="json")
    fulfillment_orders = [FulfillmentOrderSnapshot.model_validate(fo) for fo in known.values()]
    deadline = earliest_fulfill_by(fulfillment_orders)
    status = display_fulfillment_status(fulfillment_orders)
    before = order.get("fulfillment_status")
    order = {**order, "fulfillment_orders": known, "fulfillment_status": status.value,
             "fulfill_by": deadline, "fulfill_by_sort": deadline or NO_DEADLINE}  # fmt: skip
    order.update(list_keys(order))
    order = record_on_timeline(order, event, now).document
    events = []
    if status != before:
        changed = OrderFulfillmentStatusChanged(order_id=order["id"], fulfillment_status=status)
        events.append(new_event(SOURCE, "order.fulfillment_status_changed", order["id"], changed))
    return _emit(order, events, now)


def incoming_snapshot(event: CloudEvent, incoming: FulfillmentOrderSnapshot | None = None) -> Document | None:
    """The fulfillment order as a fulfillment event carries it (`incoming`, where the caller has it
    validated already), as the order keeps it; None if it carries none."""
    if incoming is None:
        if not event.data.get("fulfillment_order"):
            return None
        incoming = FulfillmentOrderSnapshot.model_validate(event.data["fulfillment_order"])
    return incoming.model_dump(mode="json")


def snapshot_digest(snapshot: Document) -> str:
    """A fingerprint of a fulfillment-order snapshot: equal for equal snapshots."""
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def record_on_timeline(order: Document, event: CloudEvent, now: str) -> Change:
    """Anything that touched the order goes on its timeline (shown newest first)."""
    return Change(_with_timeline(order, [timeline_entry(event, now)]))


def timeline_of(order: Document) -> list[Document]:
    """The order's timeline, oldest first: the entries written with the order and the notes
    added apart from it since (TIMELINE_NOTES), in the order they were recorded."""
    notes = list(order.get(TIMELINE_NOTES, {}).values())
    if not notes:
        return list(order.get("timeline", []))
    return sorted([*order.get("timeline", []), *notes], key=lambda entry: str(entry.get("recorded_at", "")))


def list_keys(order: Document) -> Document:
    """The values the listing sorts and pages by (see LIST_KEYS)."""
    created_at, order_id = order["created_at"], order["id"]
    return {
        LIST_KEYS["fulfill_by"]: f"{LIST_KEY_PREFIX}{order['fulfill_by_sort']}|{created_at}|{order_id}",
        LIST_KEYS["created_at"]: f"{LIST_KEY_PREFIX}{created_at}|{order_id}",
    }


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


def snapshot(order: Document) -> OrderSnapshot:
    return OrderSnapshot.model_validate(order)


# --- helpers ------------------------------------------------------------------------------


def _unfulfilled(fulfillment_order: FulfillmentOrderSnapshot) -> int:
    return sum(max(line.quantity - line.fulfilled_quantity, 0) for line in fulfillment_order.line_items)


def _order_event(event_type: str, order: Document) -> CloudEvent:
    models: dict[str, type[OrderCreated | OrderPaid | OrderPostPurchaseCompleted]] = {
        "order.created": OrderCreated,
        "order.paid": OrderPaid,
        "order.post_purchase_completed": OrderPostPurchaseCompleted,
    }
    return new_event(SOURCE, event_type, order["id"], models[event_type](order=snapshot(order)))


def _emit(order: Document, events: list[CloudEvent], now: str) -> Change:
    """The order's own events go on its timeline in the same write that emits them."""
    return Change(_with_timeline(order, [timeline_entry(event, now) for event in events]), events)


def _with_timeline(order: Document, entries: list[Document]) -> Document:
    """The order with `entries` at the end of its timeline, its notes folded in."""
    written = {k: v for k, v in order.items() if k != TIMELINE_NOTES}
    return {**written, "timeline": [*timeline_of(order), *entries]}


def timeline_entry(event: CloudEvent, now: str) -> Document:
    """`actor`: who caused it (the subject of the token of the HTTP call behind it), None when the
    platform did it on its own."""
    return {"at": event.time.isoformat(), "recorded_at": now, "type": event.type, "source": event.source,
            "event_id": event.id, "actor": event.actor}  # fmt: skip


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
