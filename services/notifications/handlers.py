"""Notifications' reactions to order and fulfillment events: decide the emails, record them.

Recording is idempotent by triggering event (see application.py); sending happens apart from
the consumer, so a slow mail server never holds a partition.
"""

from __future__ import annotations

from services.notifications import domain
from services.notifications.application import Delivery
from shared.catalog import FulfillmentChanged, OrderCancelled
from shared.clock import now as utcnow
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions


def build_subscriptions(delivery: Delivery, links: domain.LinkPolicy) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on("fulfillment.created", "fulfillment.tracking_updated")
    async def on_fulfillment(event: CloudEvent, changed: FulfillmentChanged) -> None:
        await delivery.record(domain.emails_for_fulfillment(event, changed, links, utcnow()))

    @subscriptions.on("order.cancelled")
    async def on_order_cancelled(event: CloudEvent, cancelled: OrderCancelled) -> None:
        draft = domain.email_for_cancellation(event, cancelled)
        await delivery.record([draft] if draft else [])

    return subscriptions
