"""What inventory does with other services' events: hold, release, commit and restock stock
for fulfillment orders. Each handler is idempotent by event id (the reservation record's inbox),
and every stock effect is idempotent on its own (see application.steps)."""

from __future__ import annotations

from services.inventory.application import Inventory
from shared.catalog import FulfillmentChanged, FulfillmentOrderChanged, OrderCancelled
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions


def build_subscriptions(inventory: Inventory) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    @subscriptions.on("fulfillment_order.created")
    async def on_fulfillment_order_created(event: CloudEvent, changed: FulfillmentOrderChanged) -> None:
        await inventory.reserve(event.id, changed.fulfillment_order)

    @subscriptions.on("fulfillment_order.moved")
    async def on_fulfillment_order_moved(event: CloudEvent, changed: FulfillmentOrderChanged) -> None:
        await inventory.reserve(event.id, changed.fulfillment_order, previous_location_id=changed.previous_location_id)

    # A closed fulfillment order needs nothing more held (usually it holds nothing by then).
    @subscriptions.on("fulfillment_order.cancelled", "fulfillment_order.closed")
    async def on_fulfillment_order_done(event: CloudEvent, changed: FulfillmentOrderChanged) -> None:
        await inventory.release(event.id, changed.fulfillment_order)

    @subscriptions.on("fulfillment.created")
    async def on_fulfillment_created(event: CloudEvent, changed: FulfillmentChanged) -> None:
        await inventory.commit(event.id, changed.fulfillment)

    @subscriptions.on("fulfillment.cancelled")
    async def on_fulfillment_cancelled(event: CloudEvent, changed: FulfillmentChanged) -> None:
        await inventory.cancel_commit(event.id, changed.fulfillment, changed.fulfillment_order)

    @subscriptions.on("order.cancelled")
    async def on_order_cancelled(event: CloudEvent, cancelled: OrderCancelled) -> None:
        await inventory.cancel_order(event.id, cancelled)

    return subscriptions
