"""What the events of fulfillment and orders ask of inventory: which lines a fulfillment order
wants held, what a fulfillment shipped, and an order's cancellation. Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from shared.aggregates import Change
from shared.catalog import FulfillmentOrderSnapshot, FulfillmentOrderStatus, FulfillmentSnapshot, OrderCancelled


def wants_stock(fulfillment_order: FulfillmentOrderSnapshot) -> bool:
    """Only a live fulfillment order at a location asks for stock. One without a location
    (digital goods, or waiting for stock) is not inventory's business."""
    return fulfillment_order.location_id is not None and fulfillment_order.status != FulfillmentOrderStatus.CANCELLED


def lines_to_reserve(fulfillment_order: FulfillmentOrderSnapshot) -> dict[str, int]:
    """Units to hold per sku: what is still to ship of the lines that ship."""
    wanted: dict[str, int] = {}
    for line in fulfillment_order.line_items:
        remaining = line.quantity - line.fulfilled_quantity
        if line.requires_shipping and remaining > 0:
            wanted[line.sku] = wanted.get(line.sku, 0) + remaining
    return dict(sorted(wanted.items()))


def lines_shipped(fulfillment: FulfillmentSnapshot) -> dict[str, int]:
    shipped: dict[str, int] = {}
    for line in fulfillment.line_items:
        if line.quantity > 0:
            shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
    return dict(sorted(shipped.items()))


def holds_again_after_cancelled_fulfillment(fulfillment_order: FulfillmentOrderSnapshot, order_cancelled: bool) -> bool:
    """Units of a cancelled fulfillment are held again only for a fulfillment order that still
    wants them."""
    done = fulfillment_order.status in (FulfillmentOrderStatus.CANCELLED, FulfillmentOrderStatus.CLOSED)
    return not done and not order_cancelled


@dataclass(frozen=True)
class CancellationNote:
    """That an order was cancelled, and whether with restock: a shipment of it that reaches
    inventory later comes straight back when restock was asked for."""

    cancelled_order_id: str
    restock: bool
    reason: str = ""
    cancelled_at: str = ""


def note_order_cancelled(
    note: CancellationNote | None, cancelled: OrderCancelled, now: str
) -> Change[CancellationNote] | None:
    """Remember that an order was cancelled (once: the first cancellation is the one noted)."""
    if note is not None:
        return None
    return Change(CancellationNote(cancelled.order.id, cancelled.restock, cancelled.reason, now))
