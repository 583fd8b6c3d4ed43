"""Handlers receive the typed payload (issue 10: `async def on_paid(event, paid: OrderPaid)`):
the data validated once, when the message is parsed, as the catalog model of its type; a handler
annotated with another model is refused when it is registered, not on the first message."""

from __future__ import annotations

import pytest

from shared.catalog import DisplayFulfillmentStatus, FulfillmentChanged, OrderCancelled, OrderFulfillmentStatusChanged
from shared.events import CloudEvent, new_event, parse_message
from shared.messaging import EventSubscriptions


def status_changed() -> CloudEvent:
    data = OrderFulfillmentStatusChanged(order_id="o-1", fulfillment_status=DisplayFulfillmentStatus.FULFILLED)
    return new_event("orders", "order.fulfillment_status_changed", "o-1", data)


async def test_a_handler_gets_the_payload_as_the_catalog_model_of_its_type() -> None:
    subscriptions = EventSubscriptions()
    received: list[OrderFulfillmentStatusChanged] = []

    @subscriptions.on("order.fulfillment_status_changed")
    async def on_status(event: CloudEvent, changed: OrderFulfillmentStatusChanged) -> None:
        received.append(changed)

    event, payload = parse_message(status_changed().to_bytes())
    await subscriptions.typed[event.type](event, payload)
    await subscriptions.handlers[event.type](event)  # the event alone: validated on the way
    assert received == [payload, payload]
    assert isinstance(payload, OrderFulfillmentStatusChanged) and payload.order_id == "o-1"


def test_a_handler_annotated_with_another_model_is_refused_when_registered() -> None:
    subscriptions = EventSubscriptions()

    async def on_status(event: CloudEvent, cancelled: OrderCancelled) -> None:
        pass

    with pytest.raises(TypeError, match="OrderFulfillmentStatusChanged"):
        subscriptions.on("order.fulfillment_status_changed")(on_status)

    async def on_several(event: CloudEvent, changed: FulfillmentChanged | OrderCancelled) -> None:
        pass

    subscriptions.on("fulfillment.created", "order.cancelled")(on_several)  # the union of their models
    with pytest.raises(TypeError):
        subscriptions.on("fulfillment.created", "order.paid")(on_several)
