"""The registry: every event type, the topic it travels on and the contract of its data.

Read by shared.events (`spec_for`, envelopes, AsyncAPI) and the runtime; adding an event type is
one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.catalog.bulk_jobs import BulkJobChanged
from shared.catalog.contract import Contract
from shared.catalog.fulfillment import (
    FulfillmentChanged,
    FulfillmentOrderChanged,
    FulfillmentRequestChanged,
    FulfillmentRequestRejection,
    FulfillmentServiceRequest,
    FulfillmentServiceResponse,
    FulfillmentServiceShipment,
)
from shared.catalog.inventory import InventoryLevel, InventoryReservation, InventoryReservationFailed, Location
from shared.catalog.notifications import NotificationOutcome
from shared.catalog.orders import (
    OrderCancelled,
    OrderCreated,
    OrderEdited,
    OrderFulfillmentStatusChanged,
    OrderPaid,
    OrderPostPurchaseCompleted,
    OrderWaitingChanged,
)
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
    "fulfill_by_changed", "cancelled", "closed", "incomplete", "reset_to_unfulfilled",
)  # fmt: skip

_SPECS: list[EventSpec] = [
    EventSpec("order.created", ORDERS_EVENTS, OrderCreated),
    EventSpec("order.paid", ORDERS_EVENTS, OrderPaid),
    EventSpec("order.cancelled", ORDERS_EVENTS, OrderCancelled),
    EventSpec("order.post_purchase_completed", ORDERS_EVENTS, OrderPostPurchaseCompleted),
    EventSpec("order.fulfillment_status_changed", ORDERS_EVENTS, OrderFulfillmentStatusChanged),
    EventSpec("order.edited", ORDERS_EVENTS, OrderEdited),
    EventSpec("order.waiting_changed", ORDERS_EVENTS, OrderWaitingChanged),
    *(
        EventSpec(f"fulfillment_order.{name}", FULFILLMENT_EVENTS, FulfillmentOrderChanged)
        for name in _FULFILLMENT_ORDER_TYPES
    ),
    EventSpec("fulfillment.created", FULFILLMENT_EVENTS, FulfillmentChanged),
    EventSpec("fulfillment.tracking_updated", FULFILLMENT_EVENTS, FulfillmentChanged),
    EventSpec("fulfillment.cancelled", FULFILLMENT_EVENTS, FulfillmentChanged),
    EventSpec("fulfillment.label_voided", FULFILLMENT_EVENTS, FulfillmentChanged),
    *(
        EventSpec(f"fulfillment_request.{name}", FULFILLMENT_EVENTS, FulfillmentRequestChanged)
        for name in ("submitted", "accepted", "rejected", "withdrawn", "progress_reported")
    ),
    *(
        EventSpec(f"cancellation_request.{name}", FULFILLMENT_EVENTS, FulfillmentRequestChanged)
        for name in ("submitted", "accepted", "rejected")
    ),
    EventSpec("fulfillment_service.fulfillment_requested", FULFILLMENT_REQUESTS, FulfillmentServiceRequest),
    EventSpec("fulfillment_service.cancellation_requested", FULFILLMENT_REQUESTS, FulfillmentServiceRequest),
    EventSpec("fulfillment_service.fulfillment_order_cancelled", FULFILLMENT_REQUESTS, FulfillmentServiceRequest),
    EventSpec("fulfillment_service.request_withdrawn", FULFILLMENT_REQUESTS, FulfillmentServiceRequest),
    EventSpec("fulfillment_service.request_accepted", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("fulfillment_service.request_rejected", FULFILLMENT_RESPONSES, FulfillmentRequestRejection),
    EventSpec("fulfillment_service.cancellation_accepted", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("fulfillment_service.cancellation_rejected", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("fulfillment_service.shipped", FULFILLMENT_RESPONSES, FulfillmentServiceShipment),
    EventSpec("fulfillment_service.cannot_complete", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("fulfillment_service.progress_reported", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("inventory.reserved", INVENTORY_EVENTS, InventoryReservation),
    EventSpec("inventory.reservation_failed", INVENTORY_EVENTS, InventoryReservationFailed),
    EventSpec("inventory.released", INVENTORY_EVENTS, InventoryReservation),
    EventSpec("inventory.committed", INVENTORY_EVENTS, InventoryReservation),
    EventSpec("inventory.restocked", INVENTORY_EVENTS, InventoryReservation),
    EventSpec("inventory.level_changed", INVENTORY_EVENTS, InventoryLevel),
    EventSpec("location.updated", INVENTORY_EVENTS, Location),
    EventSpec("notification.sent", NOTIFICATIONS_EVENTS, NotificationOutcome),
    EventSpec("notification.failed", NOTIFICATIONS_EVENTS, NotificationOutcome),
    EventSpec("bulk_job.progress", FULFILLMENT_EVENTS, BulkJobChanged),
    EventSpec("bulk_job.completed", FULFILLMENT_EVENTS, BulkJobChanged),
    EventSpec("order_bulk_job.progress", ORDERS_EVENTS, BulkJobChanged),
    EventSpec("order_bulk_job.completed", ORDERS_EVENTS, BulkJobChanged),
]

CATALOG: dict[str, EventSpec] = {spec.event_type: spec for spec in _SPECS}
