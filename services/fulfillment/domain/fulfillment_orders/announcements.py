"""The events a fulfillment order's transitions announce (see shared/catalog.py for their shapes):
on fulfillment.events.v1 keyed by the order, and on fulfillment.requests.v1 keyed by the location's
fulfillment service."""

from __future__ import annotations

from shared.catalog import (
    FulfillmentChanged,
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    FulfillmentRequestChanged,
    FulfillmentServiceRequest,
    RejectionReason,
)
from shared.events import CloudEvent, new_event

from .model import FulfillmentOrder

SOURCE = "fulfillment"


def snapshot(fo: FulfillmentOrder) -> FulfillmentOrderSnapshot:
    """The fulfillment order as events show it."""
    return FulfillmentOrderSnapshot.model_validate(fo, from_attributes=True)


def fo_event(
    event_type: str,
    fo: FulfillmentOrder,
    reason: str,
    previous_location_id: str | None = None,
    warning: str | None = None,
) -> CloudEvent:
    """fulfillment_order.*: the fulfillment order as it is after the change, why, and what to beware of."""
    data = FulfillmentOrderChanged(
        fulfillment_order=snapshot(fo),
        order=fo.order,
        reason=reason,
        previous_location_id=previous_location_id,
        warning=warning,
    )
    return new_event(SOURCE, event_type, fo.order_id, data)


def request_event(
    event_type: str, fo: FulfillmentOrder, message: str, reason: RejectionReason | None = None
) -> CloudEvent:
    """fulfillment_request.* and cancellation_request.*: the request as it is now."""
    data = FulfillmentRequestChanged(
        fulfillment_order=snapshot(fo),
        order=fo.order,
        fulfillment_service=fo.service,
        message=message,
        reason=reason,
    )
    return new_event(SOURCE, event_type, fo.order_id, data)


def fulfillment_event(event_type: str, fo: FulfillmentOrder, fulfillment_id: str) -> CloudEvent:
    """fulfillment.*: one shipment, with the fulfillment order it is part of."""
    data = FulfillmentChanged(
        fulfillment=fo.fulfillment(fulfillment_id), fulfillment_order=snapshot(fo), order=fo.order
    )
    return new_event(SOURCE, event_type, fo.order_id, data)


def to_service(event_type: str, fo: FulfillmentOrder, message: str) -> CloudEvent:
    """What the location's fulfillment service reads on fulfillment.requests.v1 (keyed by its id)."""
    service = fo.service
    data = FulfillmentServiceRequest(
        fulfillment_order=snapshot(fo), order=fo.order, fulfillment_service=service, message=message
    )
    return new_event(SOURCE, event_type, service, data)
