"""The data of the orders service's events (orders.events.v1): the order and what happened to it.

The order snapshot travels in fulfillment events too, so that no consumer reads the orders database.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict
from pydantic.config import JsonDict

from shared.catalog.contract import Contract
from shared.urls import StoredAssetUrl


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


class WarehouseStatus(StrEnum):
    """Where an order (or fulfillment order) stands in the warehouse's day, beside the Shopify-style statuses."""

    DRAFT = "draft"
    ORDER = "order"
    PACKING = "packing"
    SHIPPED = "shipped"


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


_TEXT_OR_NULL: JsonDict = {"anyOf": [{"type": "string"}, {"type": "null"}]}


class Address(Contract):
    """Where an order ships, as the merchant gave it. Every part is optional here (the orders
    service requires address1, city and country_code once a line ships); v1 published the address
    as an object of text parts, so any other part a consumer meets is text or null too."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"additionalProperties": _TEXT_OR_NULL})

    name: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    zip: str | None = None
    country_code: str | None = None
    phone: str | None = None

    def lines(self) -> tuple[str, ...]:
        """The address as a parcel (the packing slip) or an email writes it, without the phone."""
        city = " ".join(part for part in (self.zip, self.city) if part)
        parts = (self.name, self.address1, self.address2, city, self.province, self.country_code)
        return tuple(part for part in parts if part)


class OrderSnapshot(Contract):
    id: str
    customer: Customer
    shipping_address: Address | None = None
    currency: str
    financial_status: FinancialStatus
    fulfillment_status: DisplayFulfillmentStatus = DisplayFulfillmentStatus.UNFULFILLED
    line_items: list[LineItem]
    post_purchase_pending: bool = False
    created_at: str
    cancelled_at: str | None = None
    cancel_reason: str | None = None
    number: int | None = None
    waiting: bool = False
    custom_status: str | None = None

    @property
    def is_draft(self) -> bool:
        """A checkout started with no customer details yet: never packed, nothing sent to anyone."""
        return not self.customer.email.strip()


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
    bulk_job_id: str | None = None
    """The bulk job whose action caused it (the orders' timeline names it); None: not a bulk job's."""


class OrderPostPurchaseCompleted(Contract):
    order: OrderSnapshot


class OrderFulfillmentStatusChanged(Contract):
    order_id: str
    fulfillment_status: DisplayFulfillmentStatus


class OrderEdited(Contract):
    """The order after a merchant's edit (lines and/or shipping address), whole."""

    order: OrderSnapshot
    changes: list[str] = []


class OrderWaitingChanged(Contract):
    """The merchant marked the order waiting (kept out of the pack run) or cleared it."""

    order: OrderSnapshot
