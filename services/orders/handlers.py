"""What the orders service does with other services' events: keep the order's fulfillment
status and timeline. Each handler is idempotent by event id (the store's inbox)."""

from __future__ import annotations

from services.orders import domain
from shared.catalog import CATALOG
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions
from shared.store import AggregateStore, Document, now_iso
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


def build_subscriptions(orders: AggregateStore) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on(*FULFILLMENT_ORDER_EVENTS)
    async def on_fulfillment_order_changed(event: CloudEvent) -> None:
        await orders.apply(
            _order_id(event), lambda order: domain.record_fulfillment_order(_known(order, event), event, now_iso()),
            event_id=event.id,
        )  # fmt: skip

    @subscriptions.on(*TIMELINE_ONLY_EVENTS)
    async def on_related_event(event: CloudEvent) -> None:
        await orders.apply(
            _order_id(event), lambda order: domain.record_on_timeline(_known(order, event), event, now_iso()),
            event_id=event.id,
        )  # fmt: skip

    return subscriptions


class UnknownOrder(LookupError):
    """An event about an order this service never saw: not retriable, so it is dead-lettered."""


def _order_id(event: CloudEvent) -> str:
    data = event.data
    if "order_id" in data:
        return str(data["order_id"])
    for key in ("fulfillment_order", "notification"):
        if key in data and "order_id" in data[key]:
            return str(data[key]["order_id"])
    return event.subject


def _known(order: Document | None, event: CloudEvent) -> Document:
    if order is None:
        raise UnknownOrder(f"{event.type} {event.id} is about an order that does not exist")
    return order
