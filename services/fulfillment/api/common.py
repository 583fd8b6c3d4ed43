"""What the fulfillment service's routes share: the permissions they ask for, how an id is
checked, how a refused action becomes an HTTP error, and how a fulfillment order is shown.

404 for unknown ids, 409 with the reason when the rule refuses the transition in the current
state, 422 naming the field when the request names lines or values that cannot be.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict, Field

from services.fulfillment.domain.fulfillment_orders.model import (
    FulfillmentOrder,
    InvalidRequest,
    Kind,
    Line,
    NotTheFulfillmentService,
    RequestMessage,
    Reservation,
    TransitionRefused,
)
from shared.auth import SERVICE_SCOPE, Forbidden, requires
from shared.catalog import (
    FulfillmentOrderStatus,
    FulfillmentSnapshot,
    Hold,
    RequestStatus,
    ServiceWorkflow,
    WarehouseStatus,
)
from shared.http import ApiError, Conflict, NotFound
from shared.text import FROM_THE_STORE

READ = requires("fulfillment:read")
WRITE = requires("fulfillment:write")
SEEN_BY_SERVICES = requires("fulfillment:read", fulfillment_service=True)
SHIPPED_BY_SERVICES = requires("fulfillment:write", fulfillment_service=True)
SERVICES_ONLY = requires(fulfillment_service=True)
"""The fulfillment service's own answers: its token (`fulfillment_service:<id>`), not the merchant's."""

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class HoldView(Hold):
    """A hold as shown: `release_at` only on one the platform releases by itself (as stored)."""

    model_config = ConfigDict(from_attributes=True)

    release_at: str | None = Field(None, exclude_if=lambda at: at is None)


class FulfillmentOrderView(BaseModel):
    """A fulfillment order as the API shows it (fulfillment_order_view)."""

    id: str
    order_id: str
    kind: Kind
    location_id: str | None
    location_name: str | None
    fulfillment_service: str | None
    workflow: ServiceWorkflow
    status: FulfillmentOrderStatus
    request_status: RequestStatus
    notify_customer_when_shipped: bool
    messages: list[RequestMessage]
    fulfill_at: str | None
    fulfill_by: str | None
    holds: list[HoldView]
    line_items: list[Line]
    routing_reason: str
    reservation_status: Reservation
    auto_fulfill: bool
    excluded_locations: list[str]
    pick_list_printed_at: str | None
    fulfillments: list[FulfillmentSnapshot]
    cancel_reason: str | None
    replaced_by: list[str] | None
    packed_at: str | None
    created_at: str
    updated_at: str
    warehouse_status: WarehouseStatus | None


class FulfillmentOrderPage(BaseModel):
    items: list[FulfillmentOrderView]
    next_cursor: str | None


class ShipmentView(FulfillmentSnapshot):
    """A fulfillment (shipment) with the fulfillment order as it left it."""

    fulfillment_order: FulfillmentOrderView


def invalid_field(field: str, reason: str) -> ApiError:
    """422 in the same shape as a request validation error: which field, and why."""
    return ApiError(422, "invalid_request", f"invalid request: {field}", [{"field": field, "reason": reason}])


def known_id(what: str, identifier: str) -> str:
    """An id that can name something (404 for one that cannot, without asking the store)."""
    if not SAFE_ID.match(identifier):
        raise NotFound(what, identifier)
    return identifier


@contextmanager
def refusals() -> Iterator[None]:
    """A rule's refusal as the HTTP error that says why."""
    try:
        yield
    except NotTheFulfillmentService as other:
        raise Forbidden(str(other), [SERVICE_SCOPE]) from None
    except TransitionRefused as refused:
        raise Conflict(str(refused)) from None
    except LookupError as missing:
        raise ApiError(404, "not_found", str(missing)) from None
    except InvalidRequest as invalid:
        raise invalid_field(invalid.field, invalid.reason) from None


_SHOWN = [name for name in FulfillmentOrderView.model_fields if name != "fulfillments"]
"""The fulfillment order's fields its view shows as they are (not its order snapshot nor its bookkeeping)."""


def fulfillment_order_view(fo: FulfillmentOrder) -> FulfillmentOrderView:
    """A fulfillment order as the API shows it: its fulfillments as a list, oldest first. Built
    from the typed fulfillment order, whose values were checked on the way in (FROM_THE_STORE)."""
    fields = {name: getattr(fo, name) for name in _SHOWN}
    fields["fulfillments"] = sorted(fo.fulfillments.values(), key=lambda f: (f.created_at, f.id))
    return FulfillmentOrderView.model_validate(fields, context=FROM_THE_STORE)


def shipment_view(fo: FulfillmentOrder, fulfillment_id: str) -> ShipmentView:
    """A fulfillment with the fulfillment order as it left it."""
    shipment = fo.fulfillment(fulfillment_id)
    return ShipmentView.model_validate(
        {**dict(shipment), "fulfillment_order": fulfillment_order_view(fo)}, context=FROM_THE_STORE
    )
