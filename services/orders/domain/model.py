"""The order as a typed value: what the rules take and return.

An order is placed by a merchant (`NewOrder`, checked by domain.placing), paid, perhaps
cancelled, and followed through its fulfillment: it keeps the latest snapshot of each of its
fulfillment orders (what fulfillment's events carry) and derives from them the status and the
deadline the merchant sees. Its timeline lists everything that touched it.

`Order` is a frozen dataclass: a rule returns a new one (`dataclasses.replace`, whose field
names and types mypy checks) in a `Change`, with the events that announce it. How it is stored
(field names, formats, the listing's keys) is services/orders/store.py's business, not the rules'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from shared.catalog import (
    Address,
    Customer,
    DisplayFulfillmentStatus,
    FinancialStatus,
    FulfillmentOrderSnapshot,
    LineItem,
    OrderSnapshot,
)
from shared.rules import RuleViolation

SOURCE = "orders"


class OrderRuleViolation(RuleViolation):
    """The order is not in a state that allows this action; the message says why."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a merchant's request: which field, and why."""

    field: str
    reason: str


class InvalidOrder(ValueError):
    """A new order that breaks a merchant-facing rule; `problems` name each field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems


class Refund(StrEnum):
    NOW = "now"
    LATER = "later"
    NONE = "none"


class CancelReason(StrEnum):
    CUSTOMER = "customer"
    FRAUD = "fraud"
    INVENTORY = "inventory"
    DECLINED = "declined"
    OTHER = "other"


class NewLine(LineItem):
    """A line of an order being placed: its id is given when the order is placed."""

    model_config = ConfigDict(frozen=True)

    id: str = ""


class NewOrder(BaseModel):
    """What a merchant asks to place, its shape already checked (services/orders/api.py)."""

    model_config = ConfigDict(frozen=True)

    customer: Customer | None = None
    """None: a draft (a checkout started, no customer details yet); the warehouse never packs it."""
    shipping_address: Address | None = None
    currency: str
    financial_status: FinancialStatus = FinancialStatus.PENDING
    post_purchase_pending: bool = False
    line_items: tuple[NewLine, ...]


TimelineDetail = str | int | bool | list[str]
"""The value of one of a timeline entry's details, as JSON shows it."""


@dataclass(frozen=True, kw_only=True)
class TimelineEntry:
    """Something that touched the order: the event, when it happened and when the order heard of
    it. `actor`: who caused it (the subject of the token of the HTTP call behind it), None when the
    platform did it on its own. `message`: what happened, in one line a merchant reads; `details`:
    the facts that matter (a hold's reason and note, a service's message, tracking numbers, the
    bulk job that did it; domain.narration). Orders stored before `recorded_at`, `message` or
    `details` existed have entries without them."""

    at: str
    recorded_at: str | None = None
    type: str
    source: str
    event_id: str
    actor: str | None = None
    message: str = ""
    details: Mapping[str, TimelineDetail] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Comment:
    """A merchant's note on the order (`author`: the subject of the token that wrote it)."""

    id: str
    text: str
    at: str
    author: str | None = None


@dataclass(frozen=True)
class Cancellation:
    """What the merchant asked for when cancelling, and whether the money was refunded."""

    refund: Refund
    refunded: bool
    restock: bool
    notify_customer: bool
    reason: CancelReason


@dataclass(frozen=True, kw_only=True)
class Order:
    """One order, whole: what was bought and by whom, its money, and its fulfillment as fulfillment
    last told it (`fulfillment_orders`, by id). `timeline_notes`: entries other services' events
    left without reading the order (one write each, by event id), folded into `timeline` by the
    order's next write; `timeline()` in domain.timeline shows both as one."""

    id: str
    customer: Customer
    shipping_address: Address | None = None
    currency: str
    financial_status: FinancialStatus
    post_purchase_pending: bool = False
    line_items: tuple[LineItem, ...]
    fulfillment_status: DisplayFulfillmentStatus = DisplayFulfillmentStatus.UNFULFILLED
    fulfill_by: str | None = None
    created_at: str
    updated_at: str
    paid_at: str | None = None
    cancelled_at: str | None = None
    cancel_reason: CancelReason | None = None
    cancellation: Cancellation | None = None
    fulfillment_orders: Mapping[str, FulfillmentOrderSnapshot] = field(default_factory=dict)
    timeline: tuple[TimelineEntry, ...] = ()
    timeline_notes: Mapping[str, TimelineEntry] = field(default_factory=dict)
    number: int | None = None
    """The shop-wide order number (#1001, ...): None until the sequencer numbers the order, which
    is when it is announced (domain.warehouse.number)."""
    waiting: bool = False
    custom_status: str | None = None
    """The code of the merchant's own status (its name is looked up when shown)."""
    comments: tuple[Comment, ...] = ()


NO_CUSTOMER = Customer(email="", name="")
"""A draft's customer: none yet."""


def is_draft(order: Order) -> bool:
    return not order.customer.email


def snapshot(order: Order) -> OrderSnapshot:
    """The order as its events carry it."""
    return OrderSnapshot(
        id=order.id, customer=order.customer, shipping_address=order.shipping_address, currency=order.currency,
        financial_status=order.financial_status, fulfillment_status=order.fulfillment_status,
        line_items=list(order.line_items), post_purchase_pending=order.post_purchase_pending,
        created_at=order.created_at, cancelled_at=order.cancelled_at,
        cancel_reason=order.cancel_reason.value if order.cancel_reason is not None else None,
        number=order.number, waiting=order.waiting, custom_status=order.custom_status,
    )  # fmt: skip
