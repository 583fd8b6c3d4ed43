"""The registry: every event type, the topic it travels on and the contract of its data.

Read by shared.events (`spec_for`, envelopes, AsyncAPI) and the runtime; adding an event type is
one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.catalog import bulk_jobs, fulfillment, inventory, notifications, orders
from shared.catalog.contract import Contract
from shared.topics import (
    FULFILLMENT_EVENTS,
    FULFILLMENT_REQUESTS,
    FULFILLMENT_RESPONSES,
    INVENTORY_EVENTS,
    NOTIFICATIONS_EVENTS,
    ORDERS_EVENTS,
    Topic,
)


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    topic: Topic
    model: type[Contract]


_FULFILLMENT_ORDER_TYPES = (
    "created", "scheduled", "opened", "placed_on_hold", "hold_released", "moved",
    "fulfill_by_changed", "cancelled", "closed", "incomplete", "reset_to_unfulfilled", "packing_started",
)  # fmt: skip

_SPECS: list[EventSpec] = [
    EventSpec("order.created", ORDERS_EVENTS, orders.OrderCreated),
    EventSpec("order.paid", ORDERS_EVENTS, orders.OrderPaid),
    EventSpec("order.cancelled", ORDERS_EVENTS, orders.OrderCancelled),
    EventSpec("order.post_purchase_completed", ORDERS_EVENTS, orders.OrderPostPurchaseCompleted),
    EventSpec("order.fulfillment_status_changed", ORDERS_EVENTS, orders.OrderFulfillmentStatusChanged),
    EventSpec("order.edited", ORDERS_EVENTS, orders.OrderEdited),
    EventSpec("order.waiting_changed", ORDERS_EVENTS, orders.OrderWaitingChanged),
    *(
        EventSpec(f"fulfillment_order.{name}", FULFILLMENT_EVENTS, fulfillment.FulfillmentOrderChanged)
        for name in _FULFILLMENT_ORDER_TYPES
    ),
    EventSpec("fulfillment.created", FULFILLMENT_EVENTS, fulfillment.FulfillmentChanged),
    EventSpec("fulfillment.tracking_updated", FULFILLMENT_EVENTS, fulfillment.FulfillmentChanged),
    EventSpec("fulfillment.cancelled", FULFILLMENT_EVENTS, fulfillment.FulfillmentChanged),
    EventSpec("fulfillment.label_voided", FULFILLMENT_EVENTS, fulfillment.FulfillmentChanged),
    *(
        EventSpec(f"fulfillment_request.{name}", FULFILLMENT_EVENTS, fulfillment.FulfillmentRequestChanged)
        for name in ("submitted", "accepted", "rejected", "withdrawn", "progress_reported")
    ),
    *(
        EventSpec(f"cancellation_request.{name}", FULFILLMENT_EVENTS, fulfillment.FulfillmentRequestChanged)
        for name in ("submitted", "accepted", "rejected")
    ),
    *(
        EventSpec(f"fulfillment_service.{name}", FULFILLMENT_REQUESTS, fulfillment.FulfillmentServiceRequest)
        for name in (
            "fulfillment_requested",
            "cancellation_requested",
            "fulfillment_order_cancelled",
            "request_withdrawn",
        )
    ),
    EventSpec("fulfillment_service.request_accepted", FULFILLMENT_RESPONSES, fulfillment.FulfillmentServiceResponse),
    EventSpec("fulfillment_service.request_rejected", FULFILLMENT_RESPONSES, fulfillment.FulfillmentRequestRejection),
    EventSpec(
        "fulfillment_service.cancellation_accepted", FULFILLMENT_RESPONSES, fulfillment.FulfillmentServiceResponse
    ),
    EventSpec(
        "fulfillment_service.cancellation_rejected", FULFILLMENT_RESPONSES, fulfillment.FulfillmentServiceResponse
    ),
    EventSpec("fulfillment_service.shipped", FULFILLMENT_RESPONSES, fulfillment.FulfillmentServiceShipment),
    EventSpec("fulfillment_service.cannot_complete", FULFILLMENT_RESPONSES, fulfillment.FulfillmentServiceResponse),
    EventSpec("fulfillment_service.progress_reported", FULFILLMENT_RESPONSES, fulfillment.FulfillmentServiceResponse),
    EventSpec("inventory.reserved", INVENTORY_EVENTS, inventory.InventoryReservation),
    EventSpec("inventory.reservation_failed", INVENTORY_EVENTS, inventory.InventoryReservationFailed),
    EventSpec("inventory.released", INVENTORY_EVENTS, inventory.InventoryReservation),
    EventSpec("inventory.committed", INVENTORY_EVENTS, inventory.InventoryReservation),
    EventSpec("inventory.restocked", INVENTORY_EVENTS, inventory.InventoryReservation),
    EventSpec("inventory.level_changed", INVENTORY_EVENTS, inventory.InventoryLevel),
    EventSpec("location.updated", INVENTORY_EVENTS, inventory.Location),
    EventSpec("notification.sent", NOTIFICATIONS_EVENTS, notifications.NotificationOutcome),
    EventSpec("notification.failed", NOTIFICATIONS_EVENTS, notifications.NotificationOutcome),
    EventSpec("bulk_job.progress", FULFILLMENT_EVENTS, bulk_jobs.BulkJobChanged),
    EventSpec("bulk_job.completed", FULFILLMENT_EVENTS, bulk_jobs.BulkJobChanged),
    EventSpec("order_bulk_job.progress", ORDERS_EVENTS, bulk_jobs.BulkJobChanged),
    EventSpec("order_bulk_job.completed", ORDERS_EVENTS, bulk_jobs.BulkJobChanged),
]

CATALOG: dict[str, EventSpec] = {spec.event_type: spec for spec in _SPECS}
