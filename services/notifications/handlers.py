"""Notifications' reactions to order and fulfillment events: one entry per triggering event."""

from __future__ import annotations

from services.notifications import domain
from shared.catalog import FulfillmentOrderChanged
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions
from shared.store import AggregateStore, now_iso


def build_subscriptions(notifications: AggregateStore) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on("fulfillment_order.created")
    async def on_fulfillment_order_created(event: CloudEvent) -> None:
        changed = FulfillmentOrderChanged.model_validate(event.data)
        change = domain.record_fulfillment_order_notice(event.id, changed, now_iso())
        # Keyed by the triggering event: a redelivery finds the entry already there.
        await notifications.apply(event.id, lambda existing: change if existing is None else None)

    return subscriptions
