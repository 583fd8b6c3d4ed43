"""What the orders service does with other services' events: keep the order's fulfillment
status and timeline (services/orders/application.py). Each handler is idempotent by event id."""

from __future__ import annotations

from services.orders.application import FulfillmentOrderNews, Orders
from shared.catalog import (
    CATALOG,
    InventoryReservation,
    InventoryReservationFailed,
    NotificationOutcome,
)
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions
from shared.topics import FULFILLMENT_EVENTS

# Every fulfillment event that carries the fulfillment order as it is now (fulfillment_order.*,
# fulfillment.*, fulfillment_request.*, ...): taken from the catalog so that none is missed.
FULFILLMENT_ORDER_EVENTS = sorted(
    event_type
    for event_type, spec in CATALOG.items()
    if spec.topic == FULFILLMENT_EVENTS and "fulfillment_order" in spec.model.model_fields
)

TIMELINE_ONLY_EVENTS = [
    "inventory.reserved",
    "inventory.reservation_failed",
    "inventory.released",
    "inventory.committed",
    "inventory.restocked",
    "notification.sent",
    "notification.failed",
]
TimelineNews = InventoryReservation | InventoryReservationFailed | NotificationOutcome


def build_subscriptions(orders: Orders) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on(*FULFILLMENT_ORDER_EVENTS)
    async def on_fulfillment_order_changed(event: CloudEvent, changed: FulfillmentOrderNews) -> None:
        await orders.record_fulfillment_order(event, changed)

    @subscriptions.on(*TIMELINE_ONLY_EVENTS)
    async def on_related_event(event: CloudEvent, news: TimelineNews) -> None:
        order_id = news.notification.order_id if isinstance(news, NotificationOutcome) else news.order_id
        await orders.record_on_timeline(order_id, event, news)

    return subscriptions
