"""The fulfillment order as a typed value: what the rules take and return.

One per order and location (Shopify's fulfillment orders). Statuses: OPEN (can be fulfilled),
SCHEDULED (opens at fulfill_at), ON_HOLD (one or more holds), IN_PROGRESS (partly fulfilled, the
rest still open, or accepted by a fulfillment service), INCOMPLETE (the fulfillment service cannot
ship the rest), CLOSED (every line fulfilled), CANCELLED. A fulfillment order at a location holds
reserved stock there; it can be fulfilled only once inventory confirmed that reservation.

The model is a frozen dataclass: a rule returns a new one (`dataclasses.replace`, whose field
names and types mypy checks) in a `Transition`, with the events that announce it. How it is
stored (field names, formats, the fields the queries use) is the store mapping's business
(services/fulfillment/store.py), not the rules'..
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from shared.aggregates import Change
from shared.catalog import (
    FulfillmentOrderStatus,
    FulfillmentSnapshot,
    Hold,
    HoldReason,
    LabelStatus,
    OrderSnapshot,
    RequestStatus,
    ServiceWorkflow,
    Tracking,
    WarehouseStatus,
)
from shared.clock import parse
from shared.events import CloudEvent
from shared.rules import NamesAField, RuleViolation
from shared.urls import StoredAssetUrl

Status = FulfillmentOrderStatus
TERMINAL = (Status.CLOSED, Status.CANCELLED)
SYSTEM_HOLDS = (HoldReason.POST_PURCHASE_UPSELL,)
"""Hold reasons only the platform places and releases."""
NO_SERVICE = "the location is not run by a fulfillment service"
LEGACY_NO_CANCEL = (
    "its fulfillment service uses the legacy workflow: once requested, the request cannot be cancelled "
    "from here; contact the fulfillment service"
)
MAX_MESSAGES = 50
"""Messages a fulfillment order keeps (the latest): a document does not grow with its history."""


class Kind(StrEnum):
    SHIPPING = "shipping"  # physical lines at a location
    DIGITAL = "digital"  # lines that need no location
    OUT_OF_STOCK = "out_of_stock"  # physical lines no location could cover yet


class Reservation(StrEnum):
    """Whether inventory holds this fulfillment order's stock at its location."""

    PENDING = "PENDING"
    RESERVED = "RESERVED"
    NOT_REQUIRED = "NOT_REQUIRED"


class TransitionRefused(RuleViolation):
    """The action is not allowed in the fulfillment order's current state; the message says why."""


class NotTheFulfillmentService(TransitionRefused):
    """An answer about a fulfillment order from a service that does not run its location."""


class InvalidRequest(NamesAField):
    """The request names something that cannot be, for this fulfillment order."""


@dataclass(frozen=True)
class LineQuantity:
    line_item_id: str
    quantity: int


@dataclass(frozen=True)
class FulfillmentRequest:
    """A shipment the merchant (or automatic fulfillment) makes; lines None means all that remain."""

    lines: Sequence[LineQuantity] | None = None
    tracking: Tracking = field(default_factory=Tracking)
    notify_customer: bool = False
    label: LabelStatus = LabelStatus.NONE
    parcels_field: str = "tracking.numbers"
    """Where the request gave its parcel ids (tracking numbers): the field a refusal names."""


@dataclass(frozen=True)
class Line:
    """A line of the fulfillment order: how much of an order line ships from here, and the asset
    to deliver when it is digital."""

    line_item_id: str
    sku: str
    quantity: int
    fulfilled_quantity: int = 0
    requires_shipping: bool = True
    digital_asset_url: StoredAssetUrl | None = None

    @property
    def remaining(self) -> int:
        return self.quantity - self.fulfilled_quantity


@dataclass(frozen=True)
class RequestMessage:
    """A message that travelled with the request: the merchant's note to the fulfillment service,
    or the service's message with its answer; `event` names the step it came with."""

    by: Literal["merchant", "fulfillment_service"]
    event: str
    message: str
    at: str


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where a fulfillment order is fulfilled, as routing saw it when it was planned (or the merchant
    moved it): its kind, the location (None: no location, or none could take it yet), and the
    fulfillment service that runs the location with that service's workflow (see ServiceWorkflow).
    A plan entry and the fulfillment order made from it have the same."""

    kind: Kind
    location_id: str | None
    location_name: str | None = None
    fulfillment_service: str | None = None
    workflow: ServiceWorkflow = ServiceWorkflow.NEW


@dataclass(frozen=True, kw_only=True)
class PlanEntry(Placement):
    """One fulfillment order as the order's routing plan has it (domain.order_routing): all that
    creating it takes, and whether a re-route replaced it since."""

    index: int = 0
    fulfillment_order_id: str
    lines: tuple[Line, ...]
    reason: str
    holds: tuple[Hold, ...] = ()
    fulfill_at: str | None = None
    fulfill_by: str | None = None
    auto_fulfill: bool = False
    excluded_locations: tuple[str, ...] = ()
    replaced_by: tuple[str, ...] | None = None
    """The fulfillment orders that replaced this one (a re-route); None while it stands."""
    planned_at: str = ""


@dataclass(frozen=True, kw_only=True)
class FulfillmentOrder(Placement):
    """One fulfillment order, whole: where it is placed, its lines, holds, schedule, request and
    fulfillments."""

    id: str
    order_id: str
    status: Status
    request_status: RequestStatus = RequestStatus.UNSUBMITTED
    notify_customer_when_shipped: bool = True
    """Whether the buyer is emailed when the fulfillment service ships what it was asked to."""
    messages: tuple[RequestMessage, ...] = ()
    """What the merchant and the fulfillment service said with the request, oldest first."""
    fulfill_at: str | None = None
    fulfill_by: str | None = None
    holds: tuple[Hold, ...] = ()
    line_items: tuple[Line, ...]
    routing_reason: str = ""
    reservation_status: Reservation
    auto_fulfill: bool = False
    excluded_locations: tuple[str, ...] = ()
    pick_list_printed_at: str | None = None
    """When a pick list with this fulfillment order was last printed (domain.pick_lists); None: never."""
    fulfillments: Mapping[str, FulfillmentSnapshot] = field(default_factory=dict)
    order: OrderSnapshot
    cancel_reason: str | None = None
    replaced_by: tuple[str, ...] | None = None
    reroute_pending: bool = False
    packed_at: str | None = None
    """When the pack run moved it to packing (IN_PROGRESS at a merchant-managed location)."""
    created_at: str
    updated_at: str

    @property
    def where(self) -> str:
        """The location, as a merchant reads it."""
        return str(self.location_name or self.location_id)

    @property
    def service(self) -> str:
        """The fulfillment service that runs the location (refused when none does)."""
        if not self.fulfillment_service:
            raise TransitionRefused(NO_SERVICE)
        return self.fulfillment_service

    @property
    def fulfilled_any(self) -> bool:
        return any(line.fulfilled_quantity for line in self.line_items)

    @property
    def is_out_of_stock_hold(self) -> bool:
        """Held because no location had the stock; it holds none and re-routes when stock arrives."""
        return (
            self.status == Status.ON_HOLD
            and self.location_id is None
            and any(hold.reason == HoldReason.INVENTORY_OUT_OF_STOCK for hold in self.holds)
        )

    @property
    def merchant_managed(self) -> bool:
        """At a location the merchant runs (not a fulfillment service's): the merchant packs it."""
        return self.location_id is not None and not self.fulfillment_service

    @property
    def warehouse_status(self) -> WarehouseStatus | None:
        """Where it stands in the warehouse's day: packing is IN_PROGRESS at a merchant-managed
        location (moved there by the pack run, or partly shipped), shipped is CLOSED, a cancelled
        one has none; anything else is an order still to pack."""
        if self.status == Status.CANCELLED:
            return None
        if self.status == Status.CLOSED:
            return WarehouseStatus.SHIPPED
        if self.status == Status.IN_PROGRESS and self.merchant_managed:
            return WarehouseStatus.PACKING
        return WarehouseStatus.ORDER

    @property
    def skus(self) -> list[str]:
        return sorted({line.sku for line in self.line_items})

    @property
    def legacy(self) -> bool:
        return bool(self.fulfillment_service) and self.workflow == ServiceWorkflow.LEGACY

    def with_message(
        self, by: Literal["merchant", "fulfillment_service"], event: str, message: str, now: str
    ) -> FulfillmentOrder:
        """This fulfillment order keeping `message` (if any) with the request, the latest MAX_MESSAGES."""
        if not message:
            return self
        return replace(self, messages=(*self.messages, RequestMessage(by, event, message, now))[-MAX_MESSAGES:])

    def remaining_lines(self) -> tuple[Line, ...]:
        """The lines still to fulfil, with the quantity that remains."""
        return tuple(
            replace(line, quantity=line.remaining, fulfilled_quantity=0)
            for line in self.line_items
            if line.remaining > 0
        )

    def fulfillment(self, fulfillment_id: str) -> FulfillmentSnapshot:
        found = self.fulfillments.get(fulfillment_id)
        if found is None:
            raise LookupError(f"fulfillment {fulfillment_id} is not part of fulfillment order {self.id}")
        return found

    def working_status(self, now: str) -> Status:
        """What a fulfillment order with no hold is: scheduled for later, partly shipped or being
        packed, or open."""
        if self.fulfill_at and parse(self.fulfill_at) > parse(now):
            return Status.SCHEDULED
        return Status.IN_PROGRESS if self.fulfilled_any or self.packed_at else Status.OPEN


class Transition(Change[FulfillmentOrder]):
    """What a rule decided: the fulfillment order as it is now, and the events that announce it
    (a `Change` the store writes as it is)."""

    def __init__(self, fo: FulfillmentOrder, events: Iterable[CloudEvent] = ()) -> None:
        super().__init__(fo, list(events))

    @property
    def fo(self) -> FulfillmentOrder:
        return self.document

    def then(self, more: Transition | None) -> Transition:
        """This, followed by what `more` (a rule applied to this one's result) decided, if anything."""
        return self if more is None else Transition(more.fo, (*self.events, *more.events))
