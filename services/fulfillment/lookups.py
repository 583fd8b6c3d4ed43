"""What fulfillment keeps besides its aggregates, to look things up: copies of inventory's
locations and stock levels (event-carried state, so routing never calls inventory), the shop
settings, and which out-of-stock holds wait for which sku. Their indexes are in store.INDEXES."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from pymongo import ReturnDocument, UpdateOne

from services.fulfillment.domain.routing import RoutingLocation
from shared.aggregates import ModelMapping
from shared.catalog import InventoryLevel, Location
from shared.settings import seconds
from shared.store import AggregateStore, Change, Collection

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
"""How long a replica serves the shop settings and the locations from memory. A time, not a
version check: checking a version is a store round trip per use, the very cost the cache saves.
Both change seldom, by a merchant's hand, and a few seconds late on the other replicas does no
harm: an order routed to a location deactivated meanwhile has its reservation refused and is
re-routed. The replica that makes the change (`PUT /settings`, or the one that consumes
location.updated) sees it at once."""

SEEN_SECONDS = 2.0
"""How long a replica trusts what it last wrote of a stock snapshot to skip the next one when that
one leaves `available`, all that routing reads, as it was (a commit: on hand and reserved go down
together). Inventory's snapshots of one stock come in order, to one replica at a time; the store
is asked again after this long, so another replica that took the stock over (a rebalance, which
takes longer than this) and changed it is never overlooked."""

MAX_LOCATIONS = 10_000
"""Bound of a read of every location (far above any shop's count)."""

# A sweep more often than once a second costs the store without opening anything sooner that matters.
SweepInterval = Annotated[float, seconds(1, 86_400)]
PostPurchaseHold = Annotated[float, seconds(0, 30 * 86_400)]
PackRunInterval = Annotated[float, seconds(1, 86_400)]
MaxParcels = Annotated[StrictInt, Field(ge=1, le=50)]
"""Parcel ids (tracking numbers) one shipment takes at most: 1 to 50 (what a shipment's tracking holds)."""


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
    pack_run_interval_seconds: PackRunInterval = Field(
        900.0, description="how often the pack run moves what is ready to packing: 1 s to 1 day (15 minutes)"
    )
    max_parcels_per_shipment: MaxParcels = Field(
        4, description="parcel ids (tracking numbers) one shipment carries at most: 1 to 50"
    )


SHOP = "shop"


class StoredShopSettings(BaseModel):
    """The shop settings as stored: the values a merchant set (`PUT /settings`), unchecked, since
    one stored before a bound existed may be out of it (`SettingsStore` checks each as it reads)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = SHOP
    version: int = 0

    @property
    def values(self) -> dict[str, object]:
        return dict(self.model_extra or {})


SHOP_SETTINGS = ModelMapping(StoredShopSettings)


class SettingsStore:
    SHOP = SHOP

    def __init__(
        self, store: AggregateStore[StoredShopSettings], defaults: ShopSettings, cache_seconds: float = CACHE_SECONDS
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, ShopSettings] | None = None
        self.changed = asyncio.Event()
        """Set when this replica changes the settings: a periodic task waiting on an interval
        wakes to read the new one at once (the other replicas read it within their wait)."""

    async def get(self) -> ShopSettings:
        """The stored settings over the defaults, from memory for `cache_seconds` (see CACHE_SECONDS)."""
        if self._cached is None or time.monotonic() - self._cached[0] >= self.cache_seconds:
            self._remember(await self.store.get(self.SHOP))
        assert self._cached is not None
        return self._cached[1].model_copy()

    async def update(self, changes: dict[str, object]) -> ShopSettings:
        def rule(current: StoredShopSettings | None) -> Change[StoredShopSettings]:
            return Change(StoredShopSettings.model_validate({**(current.values if current else {}), **changes}))

        saved = await self.store.apply(self.SHOP, rule)
        if saved is None:  # the same keyed request again: what is stored
            saved = await self.store.get(self.SHOP)
        self._remember(saved)
        self.changed.set()
        return await self.get()

    def _remember(self, found: StoredShopSettings | None) -> None:
        """The stored settings over the defaults; a stored value out of bounds (written before the
        bounds existed) is ignored, with a warning, rather than run with."""
        settings = self.defaults.model_copy()
        for name, value in (found.values if found else {}).items():
            if name in ShopSettings.model_fields:
                try:
                    setattr(settings, name, value)
                except ValidationError:
                    log.warning("stored shop setting %s=%r is out of bounds: using %r", name, value,
                                getattr(settings, name))  # fmt: skip
        self._cached = (time.monotonic(), settings)


class KnownStock(InventoryLevel):
    """A stock level as inventory last announced it (or a refused reservation told), and when."""

    id: str
    as_of: str = ""
    # Kept from before every snapshot said them: a shortage alone tells only what is available.
    on_hand: int = 0
    reserved: int = 0


KNOWN_STOCK = ModelMapping(KnownStock)


class StockView:
    """Available stock per location and sku, as inventory last announced it."""

    def __init__(self, store: AggregateStore[KnownStock], seen_seconds: float = SEEN_SECONDS) -> None:
        self.store = store
        self.seen_seconds = seen_seconds
        self._seen: dict[str, tuple[float, int, int, str | None]] = {}  # key: (written, seq, available, bin)

    async def record(self, level: InventoryLevel, as_of: str) -> bool:
        """Keep a level snapshot unless a newer one is known; True when more became available.

        A numbered snapshot that leaves `available` and the bin as this replica just wrote them is
        not written (see SEEN_SECONDS); one newer than the one kept is written in one conditional
        round trip (the condition is checked on the one document, found by key); the first snapshot
        of a stock, one not newer and one without a number go through the rule, which reads first."""
        key = _key(level.location_id, level.sku)
        if level.seq is not None:
            seen = self._seen.get(key)
            if (
                seen is not None
                and time.monotonic() - seen[0] < self.seen_seconds
                and level.seq > seen[1]
                and level.available == seen[2]
                and level.bin == seen[3]
            ):
                self._seen[key] = (seen[0], level.seq, level.available, level.bin)
                return False
            before = await self.store.collection.find_one_and_update(
                {"_id": key, "seq": {"$lt": level.seq}},
                {"$set": {**level.model_dump(), "as_of": as_of}, "$inc": {"version": 1}},
                projection={"available": 1},
                return_document=ReturnDocument.BEFORE,
            )
            if before is not None:
                self._written(key, level.seq, level.available, level.bin)
                return level.available > int(before.get("available", 0))
        self._seen.pop(key, None)
        increased = False

        def rule(current: KnownStock | None) -> Change[KnownStock] | None:
            nonlocal increased
            if not _newer(current, level.seq, as_of):
                return None
            increased = level.available > (current.available if current else 0)
            return Change(KnownStock(id=key, **level.model_dump(), as_of=as_of))

        await self.store.apply(key, rule)
        return increased

    async def record_shortage(
        self, location_id: str, sku: str, available: int, as_of: str, seq: int | None = None
    ) -> None:
        """A failed reservation tells what was really available there."""
        key = _key(location_id, sku)
        self._seen.pop(key, None)

        def rule(current: KnownStock | None) -> Change[KnownStock] | None:
            if not _newer(current, seq, as_of):
                return None
            base = current or KnownStock(
                id=key, location_id=location_id, sku=sku, on_hand=available, available=available
            )
            return Change(base.model_copy(update={"available": available, "seq": seq, "as_of": as_of}))

        await self.store.apply(key, rule)

    def _written(self, key: str, seq: int, available: int, bin_code: str | None) -> None:
        if len(self._seen) >= 10_000:  # keep it small: what is too old to trust goes
            horizon = time.monotonic() - self.seen_seconds
            self._seen = {k: seen for k, seen in self._seen.items() if seen[0] >= horizon}
        self._seen[key] = (time.monotonic(), seq, available, bin_code)

    async def available(
        self, skus: Iterable[str], location_ids: Iterable[str] | None = None
    ) -> dict[tuple[str, str], int]:
        """Available stock of `skus` at `location_ids` (one lookup by key), or at every location."""
        wanted = sorted(set(skus))
        if location_ids is not None:
            keys = [_key(location_id, sku) for location_id in sorted(set(location_ids)) for sku in wanted]
            found = await self.store.find({"_id": {"$in": keys}}, limit=len(keys)) if keys else []
        else:
            found = []
            for sku in wanted:
                found.extend(await self.store.find({"sku": {"$eq": sku}}, limit=MAX_LOCATIONS))
        return {(stock.location_id, stock.sku): stock.available for stock in found}

    async def bins(self, location_id: str, skus: Iterable[str]) -> dict[str, str]:
        """Where each of `skus` is kept at the location, as inventory last announced it (one
        lookup by key); a sku without a bin is left out."""
        keys = [_key(location_id, sku) for sku in sorted(set(skus))]
        found = await self.store.find({"_id": {"$in": keys}}, limit=len(keys)) if keys else []
        return {stock.sku: stock.bin for stock in found if stock.bin}


class KnownLocation(Location):
    """A location as inventory last announced it, and when."""

    as_of: str = ""

    def for_routing(self) -> RoutingLocation:
        return RoutingLocation(self.id, self.name, self.priority, self.active, self.fulfillment_service, self.workflow)


KNOWN_LOCATIONS = ModelMapping(KnownLocation)


class LocationDirectory:
    """Locations as inventory announces them: priority, active, fulfillment service. Served from
    memory for `cache_seconds` (see CACHE_SECONDS)."""

    def __init__(self, store: AggregateStore[KnownLocation], cache_seconds: float = CACHE_SECONDS) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, dict[str, RoutingLocation]] | None = None

    async def record(self, location: Location, as_of: str) -> bool:
        """Keep the location; True when it became active (it may now have stock to route)."""
        became_active = False

        def rule(current: KnownLocation | None) -> Change[KnownLocation] | None:
            nonlocal became_active
            if current is not None and current.as_of > as_of:
                return None
            became_active = location.active and not (current is not None and current.active)
            return Change(KnownLocation(**location.model_dump(), as_of=as_of))

        saved = await self.store.apply(location.id, rule)
        if saved is not None and self._cached is not None:
            self._cached[1][saved.id] = saved.for_routing()
        return became_active

    async def all(self) -> list[RoutingLocation]:
        return list((await self._directory()).values())

    async def get(self, location_id: str) -> RoutingLocation | None:
        known = (await self._directory()).get(location_id)
        if known is not None:
            return known
        found = await self.store.get(location_id)  # perhaps news that reached another replica first
        return found.for_routing() if found else None

    async def _directory(self) -> dict[str, RoutingLocation]:
        if self._cached is None or time.monotonic() - self._cached[0] >= self.cache_seconds:
            found = await self.store.find({}, limit=MAX_LOCATIONS)
            if len(found) == MAX_LOCATIONS:
                log.warning("%d locations or more: routing sees only %d of them", MAX_LOCATIONS, MAX_LOCATIONS)
            self._cached = (time.monotonic(), {location.id: location.for_routing() for location in found})
        return self._cached[1]


@dataclass(frozen=True)
class HeldFor:
    """An entry of `OutOfStockHolds`: a fulfillment order on hold waiting for one of its skus."""

    id: str
    fulfillment_order_id: str


class OutOfStockHolds:
    """Which out-of-stock holds wait for which sku: one small document per (sku, fulfillment
    order), so that stock arriving for a sku finds its holds through an index. A list field on
    the fulfillment order would not do: the embedded store cannot index membership in an array.

    A hint, not the truth: the fulfillment order's own `out_of_stock` decides. An entry is written
    after the fulfillment order (a crash in between is covered by the sweep, which retries every
    out-of-stock hold oldest first), and one that no longer holds is forgotten when next found."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    async def add(self, fulfillment_order_id: str, created_at: str, skus: Iterable[str]) -> None:
        entries = [
            UpdateOne(
                {"_id": f"{sku}/{fulfillment_order_id}"},
                {"$setOnInsert": {"sku": sku, "fulfillment_order_id": fulfillment_order_id, "created_at": created_at}},
                upsert=True,
            )
            for sku in skus
        ]
        if entries:
            await self.collection.bulk_write(entries, ordered=False)

    async def waiting_for(self, skus: Iterable[str], limit: int) -> list[HeldFor]:
        """The oldest `limit` entries of each sku."""
        found: list[HeldFor] = []
        for sku in sorted(set(skus)):
            cursor = self.collection.find({"sku": {"$eq": sku}}).sort([("created_at", 1)]).limit(limit)
            found.extend([HeldFor(entry["_id"], entry["fulfillment_order_id"]) async for entry in cursor])
        return found

    async def forget(self, entry_ids: list[str]) -> None:
        if entry_ids:
            await self.collection.delete_many({"_id": {"$in": entry_ids}})


def _key(location_id: str, sku: str) -> str:
    return f"{location_id}/{sku}"


def _newer(current: KnownStock | None, seq: int | None, as_of: str) -> bool:
    """Whether a stock snapshot supersedes the one kept. Inventory numbers each stock's changes
    (`seq`), and that number decides, not the event's time: a clock ahead (an event dated 2099)
    would otherwise hide every later change. Snapshots without a number come from before it
    existed, so they are older than any numbered one; among themselves their time decides."""
    if current is None:
        return True
    kept = current.seq
    if seq is not None:
        return kept is None or seq > kept
    return kept is None and current.as_of <= as_of
