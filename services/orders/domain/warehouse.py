"""The order in the warehouse's day: its number, the merchant's comments, the waiting flag, the
merchant's own status, and the warehouse status derived from its fulfillment orders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from services.orders.domain.model import Comment, Order, OrderRuleViolation, is_draft, snapshot
from services.orders.domain.timeline import Announcement, announce, emit
from shared.aggregates import Change
from shared.catalog import (
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    OrderWaitingChanged,
    WarehouseStatus,
)

FIRST_NUMBER = 1001
MAX_COMMENTS = 500
"""An order's comments travel with it (listing, search): bounded, like its lines."""


def number(order: Order, value: int, now: str) -> Change[Order] | None:
    """Give the order its number and announce it (placed, then paid if it was placed paid): the
    order is announced only now, so every event about it carries its number. None when it holds a
    number already (the sequencer's step is idempotent: it never renumbers). An order stored before
    numbers existed was announced then, and is not announced again."""
    if order.number is not None:
        return None
    numbered = replace(order, number=value)
    if any(entry.type == "order.created" for entry in order.timeline):
        return Change(numbered)
    announcements: list[Announcement] = [announce("order.created", numbered)]
    if order.paid_at is not None and order.paid_at == order.created_at:
        announcements.append(announce("order.paid", numbered))
    return emit(numbered, announcements, now)


def set_waiting(order: Order, waiting: bool, now: str) -> Change[Order] | None:
    """Keep the order out of the pack run until cleared (nothing is wrong: the merchant wants it
    later), or clear that. Setting it as it is already emits nothing."""
    if order.waiting == waiting:
        return None
    if waiting and order.cancelled_at:
        raise OrderRuleViolation("the order is cancelled: there is nothing to wait for")
    changed = replace(order, waiting=waiting, updated_at=now)
    return emit(changed, [("order.waiting_changed", OrderWaitingChanged(order=snapshot(changed)))], now)


def add_comment(order: Order, comment: Comment) -> Change[Order]:
    """A merchant's note on the order; at most MAX_COMMENTS of them."""
    if len(order.comments) >= MAX_COMMENTS:
        raise OrderRuleViolation(f"the order has {MAX_COMMENTS} comments, the most it may have")
    return Change(replace(order, comments=(*order.comments, comment), updated_at=comment.at))


def set_custom_status(order: Order, code: str | None, now: str) -> Change[Order] | None:
    """Put one of the merchant's own statuses on the order (its code; None clears it)."""
    if order.custom_status == code:
        return None
    return Change(replace(order, custom_status=code, updated_at=now))


def warehouse_status(order: Order) -> WarehouseStatus:
    """Where the order stands in the warehouse, from its fulfillment orders: a draft has no
    customer yet; shipped when everything live shipped; packing when some fulfillment order is
    being packed (IN_PROGRESS at a merchant-managed location) or some of it shipped (a partial
    delivery stays in packing until the rest ships); otherwise a placed order."""
    if is_draft(order):
        return WarehouseStatus.DRAFT
    return from_fulfillment_orders(order.fulfillment_orders.values())


def from_fulfillment_orders(fulfillment_orders: Iterable[FulfillmentOrderSnapshot]) -> WarehouseStatus:
    live = [fo for fo in fulfillment_orders if fo.status != FulfillmentOrderStatus.CANCELLED]
    lines = [line for fo in live for line in fo.line_items]
    if not lines:
        return WarehouseStatus.ORDER
    if all(line.fulfilled_quantity >= line.quantity for line in lines):
        return WarehouseStatus.SHIPPED
    if any(line.fulfilled_quantity > 0 for line in lines):
        return WarehouseStatus.PACKING
    if any(fo.status == FulfillmentOrderStatus.IN_PROGRESS and fo.fulfillment_service is None for fo in live):
        return WarehouseStatus.PACKING
    return WarehouseStatus.ORDER
