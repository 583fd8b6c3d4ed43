"""The v1 event catalog: every event type, the topic it travels on and the shape of its data.

Other teams subscribe to these topics, so names are stable: fields may be added, never
renamed. Events carry full snapshots (event-carried state) so that no consumer needs to read
another service's database. Consumers ignore fields they do not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.text import no_control_characters
from shared.topics import (
    FULFILLMENT_EVENTS,
    FULFILLMENT_REQUESTS,
    FULFILLMENT_RESPONSES,
    INVENTORY_EVENTS,
    NOTIFICATIONS_EVENTS,
    ORDERS_EVENTS,
    Topic,
)
from shared.urls import StoredAssetUrl, TrackingUrl


class Contract(BaseModel):
    """An event's data. Text holds no control characters (shared/text.py) and asset and
    tracking URLs are ones a buyer may be sent to (shared/urls.py): an event that breaks
    either is not processed but dead-lettered with the reason."""

    model_config = ConfigDict(extra="ignore")
    multi_line_fields: ClassVar[frozenset[str]] = frozenset()  # may hold line breaks and tabs
    _plain_text = no_control_characters()


# --- orders ---------------------------------------------------------------------------


class FinancialStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


class DisplayFulfillmentStatus(StrEnum):
    UNFULFILLED = "UNFULFILLED"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    FULFILLED = "FULFILLED"
    IN_PROGRESS = "IN_PROGRESS"
    ON_HOLD = "ON_HOLD"
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    REQUEST_DECLINED = "REQUEST_DECLINED"


class Customer(Contract):
    email: str
    name: str


class LineItem(Contract):
    id: str
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    requires_shipping: bool = True
    digital_asset_url: StoredAssetUrl | None = None


class OrderSnapshot(Contract):
    id: str
    customer: Customer
    shipping_address: dict[str, str | None] | None = None
    currency: str
    financial_status: FinancialStatus
    fulfillment_status: DisplayFulfillmentStatus = DisplayFulfillmentStatus.UNFULFILLED
    line_items: list[LineItem]
    post_purchase_pending: bool = False
    created_at: str
    cancelled_at: str | None = None
    cancel_reason: str | None = None


class OrderCreated(Contract):
    order: OrderSnapshot


class OrderPaid(Contract):
    order: OrderSnapshot


class OrderCancelled(Contract):
    order: OrderSnapshot
    refund: Literal["now", "later", "none"]
    refunded: bool
    restock: bool
    notify_customer: bool
    reason: str


class OrderPostPurchaseCompleted(Contract):
    order: OrderSnapshot


class OrderFulfillmentStatusChanged(Contract):
    order_id: str
    fulfillment_status: DisplayFulfillmentStatus


# --- fulfillment ----------------------------------------------------------------------


class FulfillmentOrderStatus(StrEnum):
    OPEN = "OPEN"
    SCHEDULED = "SCHEDULED"
    ON_HOLD = "ON_HOLD"
    IN_PROGRESS = "IN_PROGRESS"
    INCOMPLETE = "INCOMPLETE"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"


class RequestStatus(StrEnum):
    UNSUBMITTED = "UNSUBMITTED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
    CANCELLATION_ACCEPTED = "CANCELLATION_ACCEPTED"
    CANCELLATION_REJECTED = "CANCELLATION_REJECTED"
    CLOSED = "CLOSED"


WITH_SERVICE = frozenset(
    {
        RequestStatus.SUBMITTED,
        RequestStatus.ACCEPTED,
        RequestStatus.CANCELLATION_REQUESTED,
        RequestStatus.CANCELLATION_REJECTED,
    }
)
"""Request statuses in which a fulfillment service has the work and has not declined it: the
merchant does not ship, hold or move it, and the order counts it as in progress."""


class HoldReason(StrEnum):
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    HIGH_RISK_OF_FRAUD = "HIGH_RISK_OF_FRAUD"
    INCORRECT_ADDRESS = "INCORRECT_ADDRESS"
    INVENTORY_OUT_OF_STOCK = "INVENTORY_OUT_OF_STOCK"
    POST_PURCHASE_UPSELL = "POST_PURCHASE_UPSELL"
    UNKNOWN_DELIVERY_DATE = "UNKNOWN_DELIVERY_DATE"
    OTHER = "OTHER"


class Hold(Contract):
    reason: HoldReason
    note: str = ""
    held_at: str | None = None
    release_at: str | None = None  # when the platform releases it by itself (post-purchase holds)


class FulfillmentOrderLine(Contract):
    line_item_id: str
    sku: str
    quantity: int
    fulfilled_quantity: int = 0
    requires_shipping: bool = True


class FulfillmentOrderSnapshot(Contract):
    id: str
    order_id: str
    location_id: str | None
    status: FulfillmentOrderStatus
    request_status: RequestStatus = RequestStatus.UNSUBMITTED
    fulfill_at: str | None = None
    fulfill_by: str | None = None
    holds: list[Hold] = []
    line_items: list[FulfillmentOrderLine]
    routing_reason: str = ""
    created_at: str
    updated_at: str


class FulfillmentOrderChanged(Contract):
    """Every fulfillment_order.* event: the fulfillment order as it is after the change.

    Inventory reacts to these: created (with a location) asks it to reserve the lines there,
    moved releases at `previous_location_id` and reserves at the new one, cancelled releases
    what is still reserved.
    """

    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"reason"})  # may quote a fulfillment service

    fulfillment_order: FulfillmentOrderSnapshot
    order: OrderSnapshot | None = None
    reason: str = ""
    previous_location_id: str | None = None


class Tracking(Contract):
    """The same bounds as over HTTP: an answer from outside cannot grow the events it causes."""

    numbers: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=50)] = []
    company: Annotated[str, Field(max_length=100)] | None = None
    urls: Annotated[list[TrackingUrl], Field(max_length=50)] = []


class LabelStatus(StrEnum):
    NONE = "NONE"
    PURCHASED = "PURCHASED"
    VOIDED = "VOIDED"


class FulfillmentLine(Contract):
    line_item_id: str
    sku: str
    quantity: int
    digital_asset_url: StoredAssetUrl | None = None


class FulfillmentSnapshot(Contract):
    """A shipment (or a delivery of digital goods) out of one fulfillment order."""

    id: str
    order_id: str
    fulfillment_order_id: str
    location_id: str | None
    status: Literal["SUCCESS", "CANCELLED"]
    line_items: list[FulfillmentLine]
    tracking: Tracking = Tracking()
    notify_customer: bool = False
    label_status: LabelStatus = LabelStatus.NONE
    created_at: str
    updated_at: str


class FulfillmentChanged(Contract):
    """Every fulfillment.* event. Inventory commits stock on created and puts it back to
    reserved on cancelled; notifications emails the buyer when notify_customer is set."""

    fulfillment: FulfillmentSnapshot
    fulfillment_order: FulfillmentOrderSnapshot
    order: OrderSnapshot


class RejectionReason(StrEnum):
    """Why a fulfillment service declines a request (Shopify's rejection reasons)."""

    INCORRECT_ADDRESS = "INCORRECT_ADDRESS"
    INELIGIBLE_PRODUCT = "INELIGIBLE_PRODUCT"
    INVENTORY_OUT_OF_STOCK = "INVENTORY_OUT_OF_STOCK"
    UNDELIVERABLE_DESTINATION = "UNDELIVERABLE_DESTINATION"
    OTHER = "OTHER"


class FulfillmentRequestChanged(Contract):
    """Every fulfillment_request.* and cancellation_request.* event: a request to a
    location's fulfillment service, and its answer (`reason` when it was rejected)."""

    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"message"})

    fulfillment_order: FulfillmentOrderSnapshot
    order: OrderSnapshot
    fulfillment_service: str
    message: str = ""
    reason: RejectionReason | None = None


class FulfillmentServiceRequest(Contract):
    """What a third-party fulfillment service reads on fulfillment.requests.v1 (keyed by its id):
    fulfillment_requested (ship it), cancellation_requested (the merchant asks to cancel; answer
    accept or reject), fulfillment_order_cancelled (the order was cancelled: stop, no answer)."""

    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"message"})

    fulfillment_order: FulfillmentOrderSnapshot
    order: OrderSnapshot
    fulfillment_service: str
    message: str = ""


class FulfillmentServiceResponse(Contract):
    """What a fulfillment service publishes back on fulfillment.responses.v1 (subject: the
    order id): its answer about one fulfillment order. Only the service of the fulfillment
    order's location may answer for it, and it proves it: the message carries a JWT signed with a
    key of the platform's JWKS in its `authtoken` attribute (see shared/auth.py)."""

    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"message"})

    fulfillment_order_id: Annotated[str, Field(min_length=1, max_length=100)]
    fulfillment_service: Annotated[str, Field(min_length=1, max_length=64)]
    message: Annotated[str, Field(max_length=1000)] = ""


class FulfillmentRequestRejection(FulfillmentServiceResponse):
    """fulfillment_service.request_rejected: the service will not ship it; the merchant acts."""

    reason: RejectionReason = RejectionReason.OTHER


class ShippedLine(Contract):
    line_item_id: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: Annotated[int, Field(gt=0, le=100_000)]


class FulfillmentServiceShipment(FulfillmentServiceResponse):
    """fulfillment_service.shipped: lines (None: all that remain) left with this tracking."""

    line_items: Annotated[list[ShippedLine], Field(max_length=250)] | None = None
    tracking: Tracking = Tracking()


# --- inventory ------------------------------------------------------------------------


class StockLine(Contract):
    sku: str
    quantity: int


class Shortage(Contract):
    sku: str
    requested: int
    available: int
    seq: int | None = None  # the stock's change count when seen (InventoryLevel.seq); None: not known


class InventoryReservation(Contract):
    """Every inventory.reserved / released / committed / restocked event (keyed by order id).

    `lines` are the quantities this event moved, not running totals.
    """

    order_id: str
    fulfillment_order_id: str
    location_id: str
    lines: list[StockLine]


class InventoryReservationFailed(Contract):
    order_id: str
    fulfillment_order_id: str
    location_id: str
    lines: list[StockLine]
    shortages: list[Shortage]


class InventoryLevel(Contract):
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    available: int
    # Counts the changes of this (sku, location)'s stock: orders its snapshots, whatever the clocks
    # say. Absent in events from before it existed.
    seq: int | None = None


class Location(Contract):
    id: str
    name: str
    priority: int
    active: bool = True
    fulfillment_service: str | None = None


# --- notifications --------------------------------------------------------------------


class NotificationRecord(Contract):
    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"error"})

    id: str
    order_id: str
    type: str
    to: str
    subject: str
    status: Literal["pending", "sent", "failed"]
    sent_at: str | None = None
    error: str | None = None


class NotificationOutcome(Contract):
    notification: NotificationRecord


# --- bulk jobs (fulfillment) ----------------------------------------------------------


class BulkJobStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"


class BulkJobFailure(Contract):
    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"message"})

    fulfillment_order_id: str
    code: str
    message: str


class BulkJobSnapshot(Contract):
    """A bulk job's counts, without its per-order results (GET /bulk-jobs/{id} has those)."""

    id: str
    action: str
    status: BulkJobStatus
    total: int
    done: int
    succeeded: int
    failed: int
    created_at: str
    updated_at: str
    completed_at: str | None = None


class BulkJobChanged(Contract):
    """bulk_job.progress (every few orders) and bulk_job.completed, keyed by the job id; the
    completed event lists the orders that failed and why."""

    bulk_job: BulkJobSnapshot
    failures: list[BulkJobFailure] = []


# --- the catalog ----------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    topic: Topic
    model: type[Contract]


_FULFILLMENT_ORDER_TYPES = (
    "created", "scheduled", "opened", "placed_on_hold", "hold_released", "moved",
    "fulfill_by_changed", "cancelled", "closed", "incomplete",
)  # fmt: skip

_SPECS: list[EventSpec] = [
    EventSpec("order.created", ORDERS_EVENTS, OrderCreated),
    EventSpec("order.paid", ORDERS_EVENTS, OrderPaid),
    EventSpec("order.cancelled", ORDERS_EVENTS, OrderCancelled),
    EventSpec("order.post_purchase_completed", ORDERS_EVENTS, OrderPostPurchaseCompleted),
    EventSpec("order.fulfillment_status_changed", ORDERS_EVENTS, OrderFulfillmentStatusChanged),
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
        for name in ("submitted", "accepted", "rejected")
    ),
    *(
        EventSpec(f"cancellation_request.{name}", FULFILLMENT_EVENTS, FulfillmentRequestChanged)
        for name in ("submitted", "accepted", "rejected")
    ),
    EventSpec("fulfillment_service.fulfillment_requested", FULFILLMENT_REQUESTS, FulfillmentServiceRequest),
    EventSpec("fulfillment_service.cancellation_requested", FULFILLMENT_REQUESTS, FulfillmentServiceRequest),
    EventSpec("fulfillment_service.fulfillment_order_cancelled", FULFILLMENT_REQUESTS, FulfillmentServiceRequest),
    EventSpec("fulfillment_service.request_accepted", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("fulfillment_service.request_rejected", FULFILLMENT_RESPONSES, FulfillmentRequestRejection),
    EventSpec("fulfillment_service.cancellation_accepted", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("fulfillment_service.cancellation_rejected", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
    EventSpec("fulfillment_service.shipped", FULFILLMENT_RESPONSES, FulfillmentServiceShipment),
    EventSpec("fulfillment_service.cannot_complete", FULFILLMENT_RESPONSES, FulfillmentServiceResponse),
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
]

CATALOG: dict[str, EventSpec] = {spec.event_type: spec for spec in _SPECS}
