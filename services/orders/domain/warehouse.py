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
    customer yet; shipped when every unit of every line shipped; packing when some of it shipped
    (a partial delivery stays in packing until the rest ships) or a fulfillment order is being
    packed (IN_PROGRESS at a merchant-managed location); otherwise a placed order."""
    if is_draft(order):
        return WarehouseStatus.DRAFT
    return goods_status(order)


def goods_status(order: Order) -> WarehouseStatus:
    """Where the order's goods stand (order, packing or shipped), draft or not: a merchant may ship
    a draft's fulfillment order by hand."""
    shipped = shipped_quantities(order)
    if order.line_items and all(shipped.get(line.id, 0) >= line.quantity for line in order.line_items):
        return WarehouseStatus.SHIPPED
    if any(shipped.values()):
        return WarehouseStatus.PACKING
    live = _live(order.fulfillment_orders.values())
    if any(fo.status == FulfillmentOrderStatus.IN_PROGRESS and fo.fulfillment_service is None for fo in live):
        return WarehouseStatus.PACKING
    return WarehouseStatus.ORDER


def shipped_quantities(order: Order) -> dict[str, int]:
    """Units shipped of each line, by line id, from the order's live fulfillment orders."""
    shipped: dict[str, int] = {}
    for fo in _live(order.fulfillment_orders.values()):
        for line in fo.line_items:
            shipped[line.line_item_id] = shipped.get(line.line_item_id, 0) + line.fulfilled_quantity
    return shipped


def _live(fulfillment_orders: Iterable[FulfillmentOrderSnapshot]) -> list[FulfillmentOrderSnapshot]:
    return [fo for fo in fulfillment_orders if fo.status != FulfillmentOrderStatus.CANCELLED]
