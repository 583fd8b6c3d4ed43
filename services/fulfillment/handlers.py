"""Fulfillment's reactions to other services' events."""

from __future__ import annotations

from services.fulfillment import domain
from shared.catalog import OrderPaid
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions
from shared.store import AggregateStore, now_iso


def build_subscriptions(fulfillment_orders: AggregateStore) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on("order.paid")
    async def on_order_paid(event: CloudEvent) -> None:
        order = OrderPaid.model_validate(event.data).order
        change = domain.open_fulfillment_order(order, 1, now_iso())
        await fulfillment_orders.apply(
            change.document["id"], lambda existing: change if existing is None else None, event_id=event.id
        )

    return subscriptions
