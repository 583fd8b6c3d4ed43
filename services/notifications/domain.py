"""What the buyer is told. This first cut records a notification entry per fulfillment order."""

from __future__ import annotations

from shared.catalog import FulfillmentOrderChanged
from shared.store import Change, Document


def record_fulfillment_order_notice(event_id: str, changed: FulfillmentOrderChanged, now: str) -> Change:
    to = changed.order.customer.email if changed.order else ""
    document: Document = {
        "order_id": changed.fulfillment_order.order_id,
        "type": "fulfillment_order_created",
        "to": to,
        "subject": "We are preparing your order",
        "status": "pending",
        "trigger_event_id": event_id,
        "recorded_at": now,
        "sent_at": None,
    }
    return Change(document)
