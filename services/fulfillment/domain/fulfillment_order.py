"""The fulfillment order's rules for callers that hold the stored document (the HTTP routes, the
handlers of fulfillment services' answers, bulk jobs): each loads it, applies the typed rule of
`fulfillment_orders` and gives back the document to store (services/fulfillment/mapping.py).

The rules themselves, by concern, and the typed `FulfillmentOrder` are in `fulfillment_orders`;
read those. This module goes once its callers hand typed rules to the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from services.fulfillment.mapping import index_fields, load, plan_entry, sort_key, stored
from shared.aggregates import Change, Document
from shared.catalog import (
    WITH_SERVICE,
    FulfillmentRequestRejection,
    FulfillmentServiceResponse,
    FulfillmentServiceShipment,
    HoldReason,
    OrderSnapshot,
    Tracking,
)
from shared.clock import NO_DEADLINE, epoch, later
from shared.clock import iso as normalise_time

from .fulfillment_orders import holds, lifecycle, service_requests, shipping
from .fulfillment_orders.announcements import SOURCE
from .fulfillment_orders.model import (
    SYSTEM_HOLDS,
    TERMINAL,
    FulfillmentRequest,
    InvalidRequest,
    Kind,
    LineQuantity,
    NotTheFulfillmentService,
    Reservation,
    Status,
    TransitionRefused,
)
from .fulfillment_orders.shipping import fulfillment_id_for, fulfillment_order_of
from .routing import RoutingLocation

__all__ = [
    "NO_DEADLINE", "SOURCE", "SYSTEM_HOLDS", "TERMINAL", "WITH_SERVICE", "FulfillmentRequest", "InvalidRequest",
    "Kind", "LineQuantity", "NotTheFulfillmentService", "Reservation", "Status", "TransitionRefused", "epoch",
    "fulfillment_id_for", "fulfillment_order_of", "later", "normalise_time", "sort_key",
]  # fmt: skip


def create(entry: Mapping[str, Any], order: OrderSnapshot, now: str) -> Change:
    return stored(lifecycle.create(plan_entry(entry), order, now))


def tombstone(entry: Mapping[str, Any], order: OrderSnapshot, reason: str, now: str) -> Change:
    return stored(lifecycle.tombstone(plan_entry(entry), order, reason, now))


def cancel(fo: Document, reason: str, now: str) -> Change | None:
    return stored(lifecycle.cancel(load(fo), reason, now))


def reservation_confirmed(fo: Document, location_id: str, now: str) -> Change | None:
    return stored(lifecycle.reservation_confirmed(load(fo), location_id, now))


def reservation_failed(fo: Document, location_id: str, shortage: str, now: str) -> Change | None:
    return stored(lifecycle.reservation_failed(load(fo), location_id, shortage, now))


def replace_out_of_stock(fo: Document, now: str) -> Change | None:
    return stored(lifecycle.replace_out_of_stock(load(fo), now))


def reroute_recorded(fo: Document, replaced_by: list[str], now: str) -> Change | None:
    return stored(lifecycle.reroute_recorded(load(fo), replaced_by, now))


def move(fo: Document, location: RoutingLocation, available: Mapping[str, int], now: str) -> Change:
    return stored(lifecycle.move(load(fo), location, available, now))


def set_fulfill_by(fo: Document, fulfill_by: str | None, now: str) -> Change:
    return stored(lifecycle.set_fulfill_by(load(fo), fulfill_by, now))


def schedule(fo: Document, fulfill_at: str, now: str) -> Change:
    return stored(lifecycle.schedule(load(fo), fulfill_at, now))


def open_scheduled(fo: Document, now: str, *, due_only: bool) -> Change | None:
    return stored(lifecycle.open_scheduled(load(fo), now, due_only=due_only))


def fulfil(fo: Document, request: FulfillmentRequest, now: str) -> Change:
    return stored(shipping.fulfil(load(fo), request, now))


def update_tracking(fo: Document, fulfillment_id: str, tracking: Tracking, notify_customer: bool, now: str) -> Change:
    return stored(shipping.update_tracking(load(fo), fulfillment_id, tracking, notify_customer, now))


def void_label(fo: Document, fulfillment_id: str, now: str) -> Change:
    return stored(shipping.void_label(load(fo), fulfillment_id, now))


def cancel_fulfillment(fo: Document, fulfillment_id: str, now: str) -> Change:
    return stored(shipping.cancel_fulfillment(load(fo), fulfillment_id, now))


def place_hold(fo: Document, reason: HoldReason, note: str, now: str) -> Change:
    return stored(holds.place_hold(load(fo), reason, note, now))


def release_hold(fo: Document, now: str, reason: HoldReason | None = None) -> Change:
    return stored(holds.release_hold(load(fo), now, reason))


def release_post_purchase_hold(fo: Document, now: str, *, expired_only: bool) -> Change | None:
    return stored(holds.release_post_purchase_hold(load(fo), now, expired_only=expired_only))


def submit_request(fo: Document, now: str, message: str = "") -> Change:
    return stored(service_requests.submit_request(load(fo), now, message))


def request_cancellation(fo: Document, message: str, now: str) -> Change:
    return stored(service_requests.request_cancellation(load(fo), message, now))


def accept_request(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    return stored(service_requests.accept_request(load(fo), answer, now))


def reject_request(fo: Document, answer: FulfillmentRequestRejection, now: str) -> Change | None:
    return stored(service_requests.reject_request(load(fo), answer, now))


def accept_cancellation(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    return stored(service_requests.accept_cancellation(load(fo), answer, now))


def reject_cancellation(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    return stored(service_requests.reject_cancellation(load(fo), answer, now))


def cannot_complete(fo: Document, answer: FulfillmentServiceResponse, now: str) -> Change | None:
    return stored(service_requests.cannot_complete(load(fo), answer, now))


def shipped_by_service(fo: Document, answer: FulfillmentServiceShipment, now: str) -> Change:
    return stored(service_requests.shipped_by_service(load(fo), answer, now))


def is_out_of_stock_hold(fo: Document) -> bool:
    return load(fo).is_out_of_stock_hold


def remaining_lines(fo: Document) -> list[dict[str, Any]]:
    return [asdict(line) for line in load(fo).remaining_lines()]


def derived_fields(fo: Document) -> Document:
    """The index fields of a stored fulfillment order (see mapping.index_fields). Its shipments
    count for none of them, so they are not read: the upgrade computes these for documents of
    earlier versions, whose shipments this version need not be able to load."""
    return index_fields(load({**fo, "fulfillments": {}}))
