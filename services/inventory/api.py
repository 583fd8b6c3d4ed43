"""HTTP routes of the inventory service: locations, stock per location, reservation records.

Every input is validated before anything is written (422 naming the field); a request that is
valid but breaks a stock or location rule is refused with 409 and the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from services.inventory.application import Inventory
from services.inventory.domain import InventoryRuleViolation
from services.inventory.domain.locations import PriorityTaken, UnknownLocation
from services.inventory.domain.reservations import (
    HistoryEntry,
    RecordedCommit,
    RecordedHold,
    RecordStatus,
    ReservationRecord,
)
from services.inventory.domain.stock import StockLevel
from shared.auth import requires
from shared.catalog import Location, ServiceWorkflow, Shortage
from shared.http import ApiError, Conflict, Identifier, IdentifierPath, NotFound, RequestBody
from shared.text import FROM_THE_STORE

MAX_UNITS = 1_000_000_000

LocationIdPath = IdentifierPath
SkuPath = IdentifierPath
Units = Annotated[StrictInt, Field(ge=0, le=MAX_UNITS)]


class LocationIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Stockholm warehouse", "priority": 1, "active": True}]}
    )
    name: Annotated[str, Field(min_length=1, max_length=255)]
    priority: Annotated[StrictInt, Field(ge=1, le=10_000, description="1 is first; unique; omit: last")] | None = None
    active: StrictBool = True
    fulfillment_service: Identifier | None = Field(
        default=None, description="id of the fulfillment service that manages this location, if any"
    )
    workflow: ServiceWorkflow = Field(
        default=ServiceWorkflow.NEW,
        description="the fulfillment service's workflow: `new` (it accepts each request; cancellation requests) "
        "or `legacy` (no accept step; no cancellation once requested)",
    )


class PrioritiesIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"location_ids": ["sto-1", "gbg-1"]}]})
    location_ids: Annotated[list[Identifier], Field(min_length=1, max_length=1000)] = Field(
        description="locations in the wanted order; they take priorities 1..n, the others follow in their order"
    )

    @field_validator("location_ids")
    @classmethod
    def each_once(cls, location_ids: list[str]) -> list[str]:
        repeated = sorted({i for i in location_ids if location_ids.count(i) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return location_ids


class StockIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"on_hand": 40}]})
    on_hand: Units


BIN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$"


class BinIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"bin": "A-01-3"}]})
    bin: Annotated[
        str,
        Field(
            min_length=1, max_length=32, pattern=BIN_PATTERN,
            description="where the sku is kept at the location, e.g. `A-01-3`: 1-32 letters, digits, "
            "spaces, '.', '_', '/', '-'; pick lists walk the bins in order (A-2 before A-10)",
        ),
    ] | None = Field(description="null: no bin")  # fmt: skip


class AdjustmentIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"delta": 12, "reason": "received"}]})
    delta: Annotated[StrictInt, Field(ge=-MAX_UNITS, le=MAX_UNITS, description="units in (+) or out (-); not 0")]
    reason: Annotated[str, Field(min_length=1, max_length=255, description="e.g. received, damaged, cycle count")]

    @field_validator("delta")
    @classmethod
    def moves_something(cls, delta: int) -> int:
        if delta == 0:
            raise ValueError("an adjustment of 0 changes nothing")
        return delta


class LocationList(BaseModel):
    items: list[Location]


class LevelAtLocation(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    location_id: str
    on_hand: int
    reserved: int
    available: int = Field(description="on_hand - reserved")
    bin: str | None = Field(
        None, description="where the sku is kept there; absent until set", exclude_if=lambda bin: bin is None
    )


class StockLevelView(LevelAtLocation):
    sku: str


class SkuStock(BaseModel):
    sku: str
    locations: list[LevelAtLocation] = Field(description="by location priority")


class ReservationView(BaseModel):
    """A fulfillment order's reservation record (`id`: the fulfillment order's)."""

    id: str
    order_id: str
    fulfillment_order_id: str
    status: RecordStatus
    location_id: str | None
    holds: list[RecordedHold]
    fulfillments: list[RecordedCommit]
    shortages: list[Shortage]
    history: list[HistoryEntry]
    created_at: str
    updated_at: str | None


class ReservationList(BaseModel):
    items: list[ReservationView]


READ = requires("inventory:read")
WRITE = requires("inventory:write")


def level_view(level: StockLevel) -> StockLevelView:
    return StockLevelView.model_validate(level)


async def shown_level(location_id: str, change: Awaitable[StockLevel], field: str | None = None) -> StockLevelView:
    """The stock level a change leaves: 404 for an unknown location; with `field`, a refused
    change is 409 naming it."""
    try:
        return level_view(await change)
    except UnknownLocation:
        raise NotFound("location", location_id) from None
    except InventoryRuleViolation as exc:
        if field is None:
            raise
        raise Conflict(str(exc), {"field": field}) from None


def build_router(inventory: Inventory) -> APIRouter:
    router = APIRouter()

    # Declared before PUT /locations/{location_id}, so "priorities" is not a location id.
    @router.put("/locations/priorities", dependencies=[WRITE], tags=["locations"])
    async def reorder_locations(body: PrioritiesIn) -> LocationList:
        """Re-order locations in one request."""
        try:
            ordered = await inventory.locations.reorder(body.location_ids)
        except UnknownLocation as exc:
            raise ApiError(
                422, "invalid_request", f"invalid request: location_ids: {exc}",
                [{"field": "location_ids", "reason": f"unknown location {i!r}"} for i in exc.location_ids],
            ) from None  # fmt: skip
        return LocationList(items=list(ordered))

    @router.put(
        "/locations/{location_id}",
        responses={201: {"model": Location, "description": "Successful Response"}},
        dependencies=[WRITE],
        tags=["locations"],
    )
    async def put_location(location_id: LocationIdPath, body: LocationIn, response: Response) -> Location:
        """Create or update a location (201 when created)."""
        try:
            location, created = await inventory.locations.put(
                location_id, body.name, body.priority, body.active, body.fulfillment_service, body.workflow
            )
        except PriorityTaken as exc:
            raise Conflict(
                str(exc), {"field": "priority", "priority": exc.priority, "location_id": exc.holder}
            ) from None
        response.status_code = 201 if created else 200
        return location

    @router.get("/locations", dependencies=[READ], tags=["locations"])
    async def list_locations() -> LocationList:
        """Every location, by priority (1 first)."""
        return LocationList(items=list(await inventory.locations.all()))

    @router.get("/locations/{location_id}", dependencies=[READ], tags=["locations"])
    async def get_location(location_id: LocationIdPath) -> Location:
        location = await inventory.locations.get(location_id)
        if location is None:
            raise NotFound("location", location_id)
        return location

    @router.put("/stock/{location_id}/{sku}", dependencies=[WRITE], tags=["stock"])
    async def set_stock(location_id: LocationIdPath, sku: SkuPath, body: StockIn) -> StockLevelView:
        """Set on_hand (a count). Refused below what is reserved."""
        return await shown_level(location_id, inventory.set_on_hand(location_id, sku, body.on_hand), "on_hand")

    @router.put("/stock/{location_id}/{sku}/bin", dependencies=[WRITE], tags=["stock"])
    async def set_bin(location_id: LocationIdPath, sku: SkuPath, body: BinIn) -> StockLevelView:
        """Set where the sku is kept at the location (null clears it); fulfillment's pick lists
        go through the bins in order."""
        return await shown_level(location_id, inventory.set_bin(location_id, sku, body.bin))

    @router.post("/stock/{location_id}/{sku}/adjustments", dependencies=[WRITE], tags=["stock"])
    async def adjust_stock(location_id: LocationIdPath, sku: SkuPath, body: AdjustmentIn) -> StockLevelView:
        """Move on_hand by delta (received, damaged, corrected). Refused if it would take reserved units."""
        return await shown_level(location_id, inventory.adjust(location_id, sku, body.delta, body.reason), "delta")

    @router.get("/stock/{sku}", dependencies=[READ], tags=["stock"])
    async def get_stock(sku: SkuPath) -> SkuStock:
        """A sku's on_hand, reserved and available per location, by location priority."""
        levels = await inventory.stock_of(sku)
        return SkuStock(sku=sku, locations=[LevelAtLocation.model_validate(level) for level in levels])

    @router.get("/reservations", dependencies=[READ], tags=["reservations"])
    async def list_reservations(
        order_id: Annotated[str, Query(min_length=1, max_length=128)],
    ) -> ReservationList:
        """The reservation record of each fulfillment order of an order."""
        return ReservationList(items=[_record_view(r) for r in await inventory.reservations_of(order_id)])

    @router.get("/reservations/{fulfillment_order_id}", dependencies=[READ], tags=["reservations"])
    async def get_reservation(
        fulfillment_order_id: Annotated[str, Path(min_length=1, max_length=128)],
    ) -> ReservationView:
        record = await inventory.reservation(fulfillment_order_id)
        if record is None:
            raise NotFound("reservation of fulfillment order", fulfillment_order_id)
        return _record_view(record)

    return router


def _record_view(record: ReservationRecord) -> ReservationView:
    return ReservationView.model_validate({"id": record.fulfillment_order_id, **asdict(record)}, context=FROM_THE_STORE)
