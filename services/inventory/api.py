"""HTTP routes of the inventory service: locations, stock per location, reservation records.

Every input is validated before anything is written (422 naming the field); a request that is
valid but breaks a stock or location rule is refused with 409 and the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

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
from services.inventory.mapping import RECORDS
from shared.auth import requires
from shared.catalog import Location, ServiceWorkflow, Shortage
from shared.http import ApiError, Conflict, Identifier, IdentifierPath, NotFound, RequestBody
from shared.openapi import shows

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
    location_id: str
    on_hand: int
    reserved: int
    available: int = Field(description="on_hand - reserved")
    bin: str | None = Field(None, description="where the sku is kept there; absent until set")


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


def level_view(level: StockLevel) -> dict[str, Any]:
    return {
        "location_id": level.location_id,
        "sku": level.sku,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
        **({"bin": level.bin} if level.bin else {}),  # shown once set
    }


def build_router(inventory: Inventory) -> APIRouter:
    router = APIRouter()

    # Declared before PUT /locations/{location_id}, so "priorities" is not a location id.
    @router.put(
        "/locations/priorities", **shows(LocationList), dependencies=[requires("inventory:write")], tags=["locations"]
    )
    async def reorder_locations(body: PrioritiesIn) -> dict[str, Any]:
        """Re-order locations in one request."""
        try:
            ordered = await inventory.locations.reorder(body.location_ids)
        except UnknownLocation as exc:
            raise ApiError(
                422, "invalid_request", f"invalid request: location_ids: {exc}",
                [{"field": "location_ids", "reason": f"unknown location {i!r}"} for i in exc.location_ids],
            ) from None  # fmt: skip
        return {"items": [location.model_dump(mode="json") for location in ordered]}

    @router.put(
        "/locations/{location_id}",
        **shows(Location, also=(201,)),
        dependencies=[requires("inventory:write")],
        tags=["locations"],
    )
    async def put_location(location_id: LocationIdPath, body: LocationIn, response: Response) -> dict[str, Any]:
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
        return location.model_dump(mode="json")

    @router.get("/locations", **shows(LocationList), dependencies=[requires("inventory:read")], tags=["locations"])
    async def list_locations() -> dict[str, Any]:
        """Every location, by priority (1 first)."""
        return {"items": [location.model_dump(mode="json") for location in await inventory.locations.all()]}

    @router.get(
        "/locations/{location_id}", **shows(Location), dependencies=[requires("inventory:read")], tags=["locations"]
    )
    async def get_location(location_id: LocationIdPath) -> dict[str, Any]:
        location = await inventory.locations.get(location_id)
        if location is None:
            raise NotFound("location", location_id)
        return location.model_dump(mode="json")

    @router.put(
        "/stock/{location_id}/{sku}",
        **shows(StockLevelView),
        dependencies=[requires("inventory:write")],
        tags=["stock"],
    )
    async def set_stock(location_id: LocationIdPath, sku: SkuPath, body: StockIn) -> dict[str, Any]:
        """Set on_hand (a count). Refused below what is reserved."""
        try:
            return level_view(await inventory.set_on_hand(location_id, sku, body.on_hand))
        except UnknownLocation:
            raise NotFound("location", location_id) from None
        except InventoryRuleViolation as exc:
            raise Conflict(str(exc), {"field": "on_hand"}) from None

    @router.put(
        "/stock/{location_id}/{sku}/bin",
        **shows(StockLevelView),
        dependencies=[requires("inventory:write")],
        tags=["stock"],
    )
    async def set_bin(location_id: LocationIdPath, sku: SkuPath, body: BinIn) -> dict[str, Any]:
        """Set where the sku is kept at the location (null clears it); fulfillment's pick lists
        go through the bins in order."""
        try:
            return level_view(await inventory.set_bin(location_id, sku, body.bin))
        except UnknownLocation:
            raise NotFound("location", location_id) from None

    @router.post(
        "/stock/{location_id}/{sku}/adjustments",
        **shows(StockLevelView),
        dependencies=[requires("inventory:write")],
        tags=["stock"],
    )
    async def adjust_stock(location_id: LocationIdPath, sku: SkuPath, body: AdjustmentIn) -> dict[str, Any]:
        """Move on_hand by delta (received, damaged, corrected). Refused if it would take reserved units."""
        try:
            return level_view(await inventory.adjust(location_id, sku, body.delta, body.reason))
        except UnknownLocation:
            raise NotFound("location", location_id) from None
        except InventoryRuleViolation as exc:
            raise Conflict(str(exc), {"field": "delta"}) from None

    @router.get("/stock/{sku}", **shows(SkuStock), dependencies=[requires("inventory:read")], tags=["stock"])
    async def get_stock(sku: SkuPath) -> dict[str, Any]:
        """A sku's on_hand, reserved and available per location, by location priority."""
        levels = await inventory.stock_of(sku)
        return {"sku": sku, "locations": [{k: v for k, v in level_view(lv).items() if k != "sku"} for lv in levels]}

    @router.get(
        "/reservations", **shows(ReservationList), dependencies=[requires("inventory:read")], tags=["reservations"]
    )
    async def list_reservations(
        order_id: Annotated[str, Query(min_length=1, max_length=128)],
    ) -> dict[str, Any]:
        """The reservation record of each fulfillment order of an order."""
        return {"items": [_record_view(r) for r in await inventory.reservations_of(order_id)]}

    @router.get(
        "/reservations/{fulfillment_order_id}",
        **shows(ReservationView),
        dependencies=[requires("inventory:read")],
        tags=["reservations"],
    )
    async def get_reservation(
        fulfillment_order_id: Annotated[str, Path(min_length=1, max_length=128)],
    ) -> dict[str, Any]:
        record = await inventory.reservation(fulfillment_order_id)
        if record is None:
            raise NotFound("reservation of fulfillment order", fulfillment_order_id)
        return _record_view(record)

    return router


def _record_view(record: ReservationRecord) -> dict[str, Any]:
    return {"id": record.fulfillment_order_id, **RECORDS.dump(record)}
