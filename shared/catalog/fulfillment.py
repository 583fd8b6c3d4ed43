"""The data of the fulfillment service's events: fulfillment orders, fulfillments (shipments),
requests to third-party fulfillment services, and those services' answers.

The fulfillment order snapshot travels in inventory's and notifications' inputs too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from shared.catalog.contract import Contract
from shared.catalog.inventory import ServiceWorkflow
from shared.catalog.orders import OrderSnapshot, WarehouseStatus
from shared.urls import StoredAssetUrl, TrackingUrl


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
    fulfillment_service: str | None = None  # the location's; absent in events from before it was sent
    workflow: ServiceWorkflow | None = None  # that service's workflow
    warehouse_status: WarehouseStatus | None = None
    """packing: IN_PROGRESS at a merchant-managed location; shipped: CLOSED; None when cancelled
    (and in events from before it was sent)."""
    packed_at: str | None = None  # when the pack run moved it to packing


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
    bulk_job_id: str | None = None
    """The bulk job whose action caused it (the orders' timeline names it); None: not a bulk job's."""
    warning: str | None = None
    """What the merchant should know besides (reset_to_unfulfilled: the service may still ship)."""


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
    bulk_job_id: str | None = None
    """The bulk job whose action caused it (the orders' timeline names it); None: not a bulk job's."""


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
    bulk_job_id: str | None = None
    """The bulk job whose action caused it (the orders' timeline names it); None: not a bulk job's."""


class FulfillmentServiceRequest(Contract):
    """What a third-party fulfillment service reads on fulfillment.requests.v1 (keyed by its id):
    fulfillment_requested (ship it), cancellation_requested (the merchant asks to cancel; answer
    accept or reject), fulfillment_order_cancelled (the order was cancelled: stop, no answer),
    request_withdrawn (the merchant took back a request not yet accepted: do not ship it)."""

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
