"""What fulfillment keeps besides its fulfillment orders: copies of inventory's locations and
stock levels (event-carried state, so routing never calls inventory) and the shop settings."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from services.fulfillment.domain.routing import RoutingLocation
from shared.catalog import InventoryLevel, Location
from shared.settings import seconds
from shared.store import AggregateStore, Change, Document

log = logging.getLogger(__name__)

# A sweep more often than once a second costs the store without opening anything sooner that matters.
SweepInterval = Annotated[float, seconds(1, 86_400)]
PostPurchaseHold = Annotated[float, seconds(0, 30 * 86_400)]


class ShopSettings(BaseModel):
    """The shop's fulfillment settings (`GET/PUT /settings`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    auto_fulfill: StrictBool = Field(
        False, description="fulfil paid orders at once instead of waiting for the merchant"
    )
    sweep_interval_seconds: SweepInterval = Field(
        30.0, description="how often the sweep (the pack run) opens, releases and retries what is due: 1 s to 1 day"
    )
    post_purchase_hold_seconds: PostPurchaseHold = Field(
        3600.0,
        description="how long an order paid with a post-purchase offer pending stays on hold at most: 0 to 30 days",
    )


class SettingsStore:
    SHOP = "shop"

    def __init__(self, store: AggregateStore, defaults: ShopSettings) -> None:
        self.store = store
        self.defaults = defaults

    async def get(self) -> ShopSettings:
        """The stored settings over the defaults; a stored value out of bounds (written before the
        bounds existed) is ignored, with a warning, rather than run with."""
        found = await self.store.get(self.SHOP)
        settings = self.defaults.model_copy()
        for name, value in (found or {}).items():
            if name in ShopSettings.model_fields:
                try:
                    setattr(settings, name, value)
                except ValidationError:
                    log.warning("stored shop setting %s=%r is out of bounds: using %r", name, value,
                                getattr(settings, name))  # fmt: skip
        return settings

    async def update(self, changes: dict[str, object]) -> ShopSettings:
        def rule(current: Document | None) -> Change:
            return Change({**(current or {}), **changes})

        await self.store.apply(self.SHOP, rule)
        return await self.get()


class StockView:
    """Available stock per location and sku, as inventory last announced it."""

    def __init__(self, store: AggregateStore) -> None:
        self.store = store

    async def record(self, level: InventoryLevel, as_of: str) -> bool:
        """Keep a level snapshot unless a newer one is known; True when more became available."""
        increased = False

        def rule(current: Document | None) -> Change | None:
            nonlocal increased
            if not _newer(current, level.seq, as_of):
                return None
            increased = level.available > (current["available"] if current else 0)
            return Change({**level.model_dump(), "as_of": as_of})

        await self.store.apply(_key(level.location_id, level.sku), rule)
        return increased

    async def record_shortage(
        self, location_id: str, sku: str, available: int, as_of: str, seq: int | None = None
    ) -> None:
        """A failed reservation tells what was really available there."""

        def rule(current: Document | None) -> Change | None:
            if not _newer(current, seq, as_of):
                return None
            base = current or {"location_id": location_id, "sku": sku, "on_hand": available, "reserved": 0}
            return Change({**base, "available": available, "seq": seq, "as_of": as_of})

        await self.store.apply(_key(location_id, sku), rule)

    async def available(self, skus: Iterable[str]) -> dict[tuple[str, str], int]:
        found = await self.store.find({"sku": {"$in": sorted(set(skus))}})
        return {(doc["location_id"], doc["sku"]): int(doc["available"]) for doc in found}


class LocationDirectory:
    """Locations as inventory announces them: priority, active, fulfillment service."""

    def __init__(self, store: AggregateStore) -> None:
        self.store = store

    async def record(self, location: Location, as_of: str) -> bool:
        """Keep the location; True when it became active (it may now have stock to route)."""
        became_active = False

        def rule(current: Document | None) -> Change | None:
            nonlocal became_active
            if current is not None and current.get("as_of", "") > as_of:
                return None
            became_active = location.active and not (current or {}).get("active", False)
            return Change({**location.model_dump(exclude={"id"}), "as_of": as_of})

        await self.store.apply(location.id, rule)
        return became_active

    async def all(self) -> list[RoutingLocation]:
        return [_routing_location(doc) for doc in await self.store.find({})]

    async def get(self, location_id: str) -> RoutingLocation | None:
        found = await self.store.get(location_id)
        return _routing_location(found) if found else None


def _routing_location(doc: Document) -> RoutingLocation:
    return RoutingLocation(doc["id"], doc["name"], doc["priority"], doc["active"], doc.get("fulfillment_service"))


def _key(location_id: str, sku: str) -> str:
    return f"{location_id}/{sku}"


def _newer(current: Document | None, seq: int | None, as_of: str) -> bool:
    """Whether a stock snapshot supersedes the one kept. Inventory numbers each stock's changes
    (`seq`), and that number decides, not the event's time: a clock ahead (an event dated 2099)
    would otherwise hide every later change. Snapshots without a number come from before it
    existed, so they are older than any numbered one; among themselves their time decides."""
    if current is None:
        return True
    kept = current.get("seq")
    if seq is not None:
        return kept is None or seq > int(kept)
    return kept is None and str(current.get("as_of", "")) <= as_of
