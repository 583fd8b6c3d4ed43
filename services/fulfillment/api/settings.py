"""HTTP routes of what routing sees (locations and stock) and of the shop's fulfillment settings."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.fulfillment.application import Fulfillment
from services.fulfillment.lookups import MaxParcels, PackRunInterval, PostPurchaseHold, ShopSettings, SweepInterval
from shared.auth import requires
from shared.http import RequestBody

from .common import READ


class SettingsIn(RequestBody):
    """Only the fields given change; each within the bounds of the stored settings."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"auto_fulfill": False, "pack_run_interval_seconds": 900}]}
    )

    auto_fulfill: StrictBool | None = None
    sweep_interval_seconds: SweepInterval | None = None
    post_purchase_hold_seconds: PostPurchaseHold | None = None
    pack_run_interval_seconds: PackRunInterval | None = None
    max_parcels_per_shipment: MaxParcels | None = None


class RoutingLocationView(BaseModel):
    location_id: str
    name: str
    priority: int
    active: bool
    fulfillment_service: str | None
    available: int = Field(description="the sku's available units there, as routing last heard")


class RoutingStock(BaseModel):
    sku: str
    locations: list[RoutingLocationView] = Field(description="by priority, 1 first")


def build_settings_router(fulfillment: Fulfillment) -> APIRouter:
    router = APIRouter()

    # --- what routing sees ---------------------------------------------------------------

    @router.get("/routing/stock/{sku}", dependencies=[READ], tags=["routing"])
    async def routing_view(sku: str) -> RoutingStock:
        """The locations and the sku's available stock as routing sees them (its copy of
        inventory's events): why an order went where it went."""
        locations = sorted(await fulfillment.locations.all(), key=lambda loc: loc.rank)
        available = await fulfillment.stock.available([sku], [loc.id for loc in locations])
        return RoutingStock(
            sku=sku,
            locations=[
                RoutingLocationView(
                    location_id=loc.id, name=loc.name, priority=loc.priority, active=loc.active,
                    fulfillment_service=loc.fulfillment_service, available=available.get((loc.id, sku), 0),
                )
                for loc in locations
            ],
        )  # fmt: skip

    # --- settings -----------------------------------------------------------------------

    @router.get("/settings", dependencies=[READ], tags=["settings"])
    async def get_settings() -> ShopSettings:
        return await fulfillment.shop_settings()

    @router.put("/settings", dependencies=[requires("settings:write")], tags=["settings"])
    async def put_settings(body: SettingsIn) -> ShopSettings:
        """Automatic or manual fulfillment, the sweep and pack run intervals, the post-purchase hold
        limit, the parcels a shipment carries at most."""
        return await fulfillment.settings.update(body.model_dump(exclude_none=True))

    return router
