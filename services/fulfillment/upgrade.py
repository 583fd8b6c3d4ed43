"""Brings what an earlier version stored up to what this one queries by: once, at start.

This version finds fulfillment orders and plans through fields that earlier versions did not keep
(`sort_key`, `opens_at_epoch`, `upsell_release_epoch`, `warehouse_status`: see store.index_fields;
`materialise_check_at` on plans), finds out-of-stock holds by sku through `out_of_stock_holds`,
and finds a fulfillment through the fulfillment order its id names, which ids made before do not.
Without this, an earlier version's scheduled fulfillment orders would never open, its interrupted
plans never be repaired, and its fulfillments never be found again.

Every replica runs it at start, in the background; it is idempotent (each write is of values
derived from the document, conditional on the version it read, or an upsert) and a marker
document says it is done, so later starts cost one lookup. It reads each collection once, in
pages by key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from pymongo import UpdateOne

from services.fulfillment.domain.fulfillment_orders.shipping import fulfillment_order_of
from services.fulfillment.lookups import OutOfStockHolds
from services.fulfillment.store import FULFILLMENT_ORDERS, LEGACY_FULFILLMENTS, OUT_OF_STOCK_HOLDS, index_fields
from shared.clock import now_iso
from shared.store import Collection, Database, Document, Filter

log = logging.getLogger("fulfillment.upgrade")

MARKER = "fulfillment-indexed-fields-2"
"""-2: `warehouse_status` came in (a store upgraded by -1 is read once more; the writes are idempotent)."""
MIGRATIONS = "migrations"
PAGE = 200


async def upgrade(database: Database) -> int:
    """Upgrade what needs it (nothing when the marker says it was done); how many documents changed."""
    migrations = database[MIGRATIONS]
    if await migrations.find_one({"_id": MARKER}) is not None:
        return 0
    changed = await _fulfillment_orders(database) + await _routings(database["routings"])
    await migrations.update_one(
        {"_id": MARKER}, {"$setOnInsert": {"done_at": now_iso(), "changed": changed}}, upsert=True
    )
    return changed


async def _fulfillment_orders(database: Database) -> int:
    collection = database["fulfillment_orders"]
    holds = OutOfStockHolds(database[OUT_OF_STOCK_HOLDS])
    changed = 0
    async for doc in _every(collection, {"inbox": 0, "outbox": 0}):
        try:  # its shipments count for no index field: not read (this version need not know them)
            fo = FULFILLMENT_ORDERS.load({**doc, "id": doc["_id"], "fulfillments": {}})
            derived = index_fields(fo)
        except (KeyError, TypeError, ValueError):
            log.warning("fulfillment order %s is not one this version knows: left as it is", doc["_id"])
            continue
        if any(doc.get(name) != value for name, value in derived.items()):
            result = await collection.update_one(
                {"_id": doc["_id"], "version": {"$eq": doc.get("version")}},
                {"$set": derived, "$inc": {"version": 1}},
            )  # not modified: written meanwhile, by this version, which keeps the fields itself
            changed += result.modified_count
        legacy = [fid for fid in doc.get("fulfillments", {}) if fulfillment_order_of(fid) is None]
        if legacy:
            await database[LEGACY_FULFILLMENTS].bulk_write(
                [
                    UpdateOne({"_id": fid}, {"$setOnInsert": {"fulfillment_order_id": doc["_id"]}}, upsert=True)
                    for fid in legacy
                ],
                ordered=False,
            )
        if fo.is_out_of_stock_hold:
            await holds.add(fo.id, fo.created_at, fo.skus)
    return changed


async def _routings(collection: Collection) -> int:
    changed = 0
    projection: Filter = {"revision": 1, "materialised_revision": 1, "materialise_check_at": 1, "version": 1}
    async for doc in _every(collection, projection):
        if "materialise_check_at" in doc:
            continue  # written by this version
        pending = doc.get("materialised_revision") != doc.get("revision")
        result = await collection.update_one(
            {"_id": doc["_id"], "version": {"$eq": doc.get("version")}},
            {"$set": {"materialise_check_at": 0.0 if pending else None}, "$inc": {"version": 1}},
        )
        changed += result.modified_count
    return changed


async def _every(collection: Collection, projection: Filter) -> AsyncIterator[Document]:
    """Every document, in pages by key (never deleted here, so a page is never skipped)."""
    skip = 0
    while True:
        page = await collection.find({}, projection).sort([("_id", 1)]).skip(skip).limit(PAGE).to_list()
        for doc in page:
            yield doc
        if len(page) < PAGE:
            return
        skip += len(page)
