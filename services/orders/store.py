"""The orders collection's indexes, and bringing stored orders up to the listing's keys.

Every query the service sends has an index here (README, "Store indexes"), and is shaped so that
both the embedded store and MongoDB answer it from that index: equality as `$eq`, one range, on
the listing key it sorts by, and each filter of `GET /orders` with each of its sort orders as one
compound index (the filters first, then the sort key), so a page is one index range walk however
many orders are stored.
"""

from __future__ import annotations

import logging

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.orders import domain
from shared.clock import NO_DEADLINE
from shared.store import Document, backfill

log = logging.getLogger(__name__)

# The listing's filters, in the order they lead a compound index.
LIST_FILTERS = ("financial_status", "fulfillment_status")


def _listing_indexes() -> list[IndexModel]:
    """One index per (set of filters, sort key): GET /orders?financial_status=&fulfillment_status=&sort="""
    filter_sets: list[tuple[str, ...]] = [(), ("financial_status",), ("fulfillment_status",), LIST_FILTERS]
    return [
        IndexModel([*((name, ASCENDING) for name in filters), (key, ASCENDING)])
        for key in domain.LIST_KEYS.values()
        for filters in filter_sets
    ]


# Created at start by the runtime (runtime.indexes), beside the outbox relay's own index.
INDEXES: dict[str, list[IndexModel]] = {"orders": _listing_indexes()}

BACKFILL_BATCH = 500


async def backfill_list_keys(database: AsyncDatabase[Document]) -> int:
    """Give orders stored before the listing keys existed their keys, so that they are listed.

    Orders without a key sort first on its index (a missing value sorts before any string on
    MongoDB and on the embedded store): one look at the first order says whether there is
    anything to do, and each batch is an index walk from the start.
    """

    def keys_of(doc: Document) -> Document:
        return domain.list_keys({**doc, "id": doc["_id"], "fulfill_by_sort": doc.get("fulfill_by_sort") or NO_DEADLINE})

    updated = 0
    for key in domain.LIST_KEYS.values():
        updated += await backfill(database["orders"], {}, key, keys_of, BACKFILL_BATCH)
    if updated:
        log.info("gave %d stored orders their listing keys", updated)
    return updated
