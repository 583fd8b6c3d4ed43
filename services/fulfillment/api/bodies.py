"""What the merchant (or a fulfillment service) sends to act on a fulfillment order: the request
bodies of the fulfillment-order routes (api/fulfillment_orders.py), each checking its own fields."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StrictBool, StrictInt

from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder, FulfillmentRequest, LineQuantity
from shared.catalog import (
    FulfillmentServiceShipment,
    HoldReason,
    LabelStatus,
    ShippedLine,
    Tracking,
)
from shared.http import RequestBody
from shared.openapi import example
from shared.urls import TrackingUrl

from .common import invalid_field


class LineIn(RequestBody):
    line_item_id: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: Annotated[StrictInt, Field(gt=0, le=10_000)]


class TrackingIn(RequestBody):
    numbers: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=50)] = Field(
        default_factory=list
    )
    company: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    url: TrackingUrl | None = None
    urls: Annotated[list[TrackingUrl], Field(max_length=50)] = Field(default_factory=list)

    def tracking(self) -> Tracking:
        urls = [str(url) for url in ([self.url] if self.url else []) + self.urls]
        return Tracking(numbers=self.numbers, company=self.company, urls=urls)


class FulfillmentIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"tracking": {"numbers": ["00340434161094042557"], "company": "PostNord"}, "notify_customer": True}
            ]
        }
    )
    multi_line_fields = frozenset({"parcels"})

    line_items: Annotated[list[LineIn], Field(max_length=250)] | None = Field(
        None, description="lines and quantities to ship; leave out to ship everything that remains"
    )
    tracking: TrackingIn = TrackingIn()
    parcels: Annotated[str, Field(max_length=5_000)] | None = Field(
        None,
        description="parcel ids (tracking numbers) as typed or scanned: one a line, or separated by spaces or "
        "commas; added to tracking.numbers. At most max_parcels_per_shipment (a shop setting, 4) in all",
    )
    notify_customer: StrictBool = False
    label: Literal["PURCHASED", "NONE"] = Field("NONE", description="PURCHASED: a shipping label was bought")

    def request(self) -> FulfillmentRequest:
        """The merchant's shipment."""
        lines = (
            None if self.line_items is None else [LineQuantity(li.line_item_id, li.quantity) for li in self.line_items]
        )
        tracking = self.tracking.tracking()
        scanned = parcel_ids(self.parcels) if self.parcels is not None else []
        numbers = list(dict.fromkeys([*tracking.numbers, *scanned]))
        return FulfillmentRequest(
            lines=lines,
            tracking=tracking.model_copy(update={"numbers": numbers}),
            notify_customer=self.notify_customer,
            label=LabelStatus(self.label),
            parcels_field="parcels" if scanned else "tracking.numbers",
        )

    def shipment(self, fo: FulfillmentOrder) -> FulfillmentServiceShipment:
        """The shipment of the location's fulfillment service, as its `shipped` answer says it."""
        lines = None if self.line_items is None else [ShippedLine(**li.model_dump()) for li in self.line_items]
        return FulfillmentServiceShipment(
            fulfillment_order_id=fo.id,
            fulfillment_service=fo.service,
            line_items=lines,
            tracking=self.tracking.tracking(),
        )


def parcel_ids(text: str) -> list[str]:
    """Parcel ids as a person types or a scanner enters them: separated by line breaks, spaces,
    commas or semicolons; each one at most 100 characters (422 naming `parcels`)."""
    ids = [part for part in re.split(r"[\s,;]+", text) if part]
    too_long = next((part for part in ids if len(part) > 100), None)
    if too_long is not None:
        raise invalid_field("parcels", f"a parcel id is at most 100 characters: {too_long[:20]}... is longer")
    return ids


class TrackingUpdateIn(TrackingIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"numbers": ["00340434161094042557"], "company": "PostNord", "notify_customer": True}]
        }
    )
    notify_customer: StrictBool = False


class HoldIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "INCORRECT_ADDRESS", "note": "Street number missing; emailed the customer."}]
        }
    )
    reason: HoldReason
    note: Annotated[str, Field(max_length=1000)] = ""


class ReleaseIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "INCORRECT_ADDRESS"}]})
    reason: HoldReason | None = Field(None, description="release only this hold; leave out to release all")


class MoveIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"location_id": "gbg-1"}]})
    location_id: Annotated[str, Field(min_length=1, max_length=100)]


class FulfillByIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"fulfill_by": "2030-01-31T17:00:00+01:00"}]})
    fulfill_by: AwareDatetime | None = Field(description="RFC 3339 with a time zone; null clears the deadline")


class ScheduleIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"fulfill_at": "2030-01-15T08:00:00+01:00"}]})
    fulfill_at: AwareDatetime


class MessageIn(RequestBody):
    # A message to or from the fulfillment service: line breaks allowed.
    model_config = example({"message": "Picked; ships tomorrow."})
    multi_line_fields = frozenset({"message"})

    message: Annotated[str, Field(max_length=1000)] = ""


class SubmitIn(MessageIn):
    model_config = example({"message": "Please ship with the gift note."})


class CancellationRequestIn(MessageIn):
    model_config = example({"message": "The customer cancelled."})


class ResetIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"note": "The service confirmed by phone that nothing shipped."}]}
    )
    multi_line_fields = frozenset({"note"})

    note: Annotated[str, Field(max_length=1000)] = ""
