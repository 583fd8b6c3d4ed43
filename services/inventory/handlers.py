"""Inventory's reactions to fulfillment events."""

from __future__ import annotations

from services.inventory import domain
from shared.catalog import FulfillmentOrderChanged
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions
from shared.store import AggregateStore, now_iso


def build_subscriptions(reservations: AggregateStore) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on("fulfillment_order.created")
    async def on_fulfillment_order_created(event: CloudEvent) -> None:
        fulfillment_order = FulfillmentOrderChanged.model_validate(event.data).fulfillment_order
        change = domain.record_reservation_request(fulfillment_order, now_iso())
        await reservations.apply(
            fulfillment_order.id, lambda existing: change if existing is None else None, event_id=event.id
        )

    return subscriptions
