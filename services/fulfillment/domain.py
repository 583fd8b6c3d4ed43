"""Fulfillment orders: one per order and location, following Shopify's fulfillment model.

Pure rules over documents, no I/O. Routing is deliberately trivial in this first cut: every
line that needs shipping goes to one fulfillment order waiting for a location.
"""

from __future__ import annotations

import uuid

from shared.catalog import (
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    OrderSnapshot,
    RequestStatus,
)
from shared.events import new_event
from shared.store import Change, Document

SOURCE = "fulfillment"


def fulfillment_order_id(order_id: str, index: int) -> str:
    """Deterministic, so that routing the same order twice names the same fulfillment orders."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"order/{order_id}/fulfillment-order/{index}"))


def open_fulfillment_order(order: OrderSnapshot, index: int, now: str) -> Change:
    fulfillment_order = FulfillmentOrderSnapshot(
        id=fulfillment_order_id(order.id, index),
        order_id=order.id,
        location_id=None,
        status=FulfillmentOrderStatus.OPEN,
        request_status=RequestStatus.UNSUBMITTED,
        line_items=[
            {"line_item_id": line.id, "sku": line.sku, "quantity": line.quantity,
             "requires_shipping": line.requires_shipping}
            for line in order.line_items
        ],  # fmt: skip
        routing_reason="single fulfillment order for every line (routing by location comes next)",
        created_at=now,
        updated_at=now,
    )
    document: Document = fulfillment_order.model_dump(mode="json")
    event = new_event(
        SOURCE,
        "fulfillment_order.created",
        order.id,
        FulfillmentOrderChanged(fulfillment_order=fulfillment_order, order=order,
                                reason=fulfillment_order.routing_reason),
    )  # fmt: skip
    return Change(document, [event])
