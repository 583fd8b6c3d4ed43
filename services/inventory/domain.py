"""Stock rules. This first cut only records what fulfillment asks to reserve."""

from __future__ import annotations

from shared.catalog import FulfillmentOrderSnapshot
from shared.store import Change, Document


def record_reservation_request(fulfillment_order: FulfillmentOrderSnapshot, now: str) -> Change:
    document: Document = {
        "order_id": fulfillment_order.order_id,
        "fulfillment_order_id": fulfillment_order.id,
        "location_id": fulfillment_order.location_id,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity}
            for line in fulfillment_order.line_items
            if line.requires_shipping
        ],
        "status": "requested",
        "requested_at": now,
    }
    return Change(document)
