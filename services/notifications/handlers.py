"""Notifications' reactions to order and fulfillment events: record the emails they ask for.

Recording is idempotent by triggering event (see application.py); sending happens apart from
the consumer, so a slow mail server never holds a partition.
"""

from __future__ import annotations

from services.notifications.application import Delivery
from shared.catalog import FulfillmentChanged, OrderCancelled
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions


def build_subscriptions(delivery: Delivery) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on("fulfillment.created", "fulfillment.tracking_updated")
    async def on_fulfillment(event: CloudEvent, changed: FulfillmentChanged) -> None:
        await delivery.on_fulfillment(event, changed)

    @subscriptions.on("order.cancelled")
    async def on_order_cancelled(event: CloudEvent, cancelled: OrderCancelled) -> None:
        await delivery.on_order_cancelled(event, cancelled)

    return subscriptions
