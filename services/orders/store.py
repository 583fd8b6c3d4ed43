"""How orders are stored: the mapping between the typed `Order` and its document (`MAPPING`), the
fields the listing sorts and pages by (computed here on every write, never by the rules), the
collection's indexes, and bringing stored orders up to the listing's keys.

The stored shape is a public contract (earlier versions' documents, the HTTP views, bench data):
field names and value formats are the same as before the order was typed, and fields added since
have defaults, so every earlier document loads.

Every query the service sends has an index here (README, "Store indexes"), and is shaped so that
both the embedded store and MongoDB answer it from that index: equality as `$eq`, one range, on
the listing key it sorts by, and each filter of `GET /orders` with each of its sort orders as one
compound index (the filters first, then the sort key), so a page is one index range walk however
many orders are stored.
"""

from __future__ import annotations

import logging

from pydantic import TypeAdapter
from pymongo import ASCENDING, IndexModel

from services.orders.domain import Order, TimelineEntry, warehouse_status
from shared import bulk_worker
from shared.aggregates import Document, ModelMapping
from shared.clock import NO_DEADLINE
from shared.store import Database, Filter, backfill

log = logging.getLogger(__name__)

# The listing's sort orders, each one stored field whose value orders the orders totally (the
# order id breaks ties), so that a page can start after any order with one indexed range
# condition (keyset pagination) instead of an $or over several fields, which no store answers
# from an index. The "~" keeps the value from looking like a date to the embedded store, which
# would otherwise compare it on a slow path that reads every document.
LIST_KEYS = {"fulfill_by": "sort_fulfill_by", "created_at": "sort_created_at"}
LIST_KEY_PREFIX = "~"

TIMELINE_NOTES = "timeline_notes"
"""Where notes are written apart from the order (`Order.timeline_notes`), each under its event id."""

_TIMELINE_ENTRY = TypeAdapter(TimelineEntry)


def index_fields(order: Order) -> dict[str, object]:
    """What the listing, its filters and the numbering sweep query an order by."""
    fulfill_by_sort = order.fulfill_by or NO_DEADLINE
    return {
        "fulfill_by_sort": fulfill_by_sort,
        **list_keys(order.id, order.created_at, fulfill_by_sort),
        "warehouse_status": warehouse_status(order).value,
        "number_pending": order.number is None,  # numbering.Sequencer's sweep
    }


class OrderMapping(ModelMapping[Order]):
    """An `Order` as the store holds it: its fields, plus `fulfill_by_sort` and the listing keys."""

    def stored(self, order: Order) -> Document:
        document = super().stored(order)
        if not order.timeline_notes:
            del document[TIMELINE_NOTES]  # folded into the timeline: an order written whole has none
        return document


MAPPING = OrderMapping(Order, index_fields)


def list_keys(order_id: str, created_at: str, fulfill_by_sort: str) -> dict[str, str]:
    """The values the listing sorts and pages by (see LIST_KEYS)."""
    return {
        LIST_KEYS["fulfill_by"]: f"{LIST_KEY_PREFIX}{fulfill_by_sort}|{created_at}|{order_id}",
        LIST_KEYS["created_at"]: f"{LIST_KEY_PREFIX}{created_at}|{order_id}",
    }


def list_key(order: Order, key: str) -> str:
    """One listing key of an order (a field of LIST_KEYS), as it is stored."""
    return list_keys(order.id, order.created_at, order.fulfill_by or NO_DEADLINE)[key]


def note(entry: TimelineEntry) -> Filter:
    """The fields that add `entry` to an order as a note, in one write without reading it."""
    return {f"{TIMELINE_NOTES}.{entry.event_id}": _TIMELINE_ENTRY.dump_python(entry, mode="json")}


# The listing's filters, in the order they lead a compound index.
LIST_FILTERS = ("financial_status", "fulfillment_status")
# Filters with an index of their own (each with each sort key): a search with one of them walks
# that index, and checks any other filter on the orders it reads (listing.Plan).
OWN_INDEX_FILTERS = ("custom_status", "warehouse_status")


def _listing_indexes() -> list[IndexModel]:
    """One index per (set of filters, sort key): GET /orders?financial_status=&fulfillment_status=&sort="""
    filter_sets: list[tuple[str, ...]] = [(), ("financial_status",), ("fulfillment_status",), LIST_FILTERS]
    filter_sets += [(name,) for name in OWN_INDEX_FILTERS]
    return [
        IndexModel([*((name, ASCENDING) for name in filters), (key, ASCENDING)])
        for key in LIST_KEYS.values()
        for filters in filter_sets
    ]


# Created at start by the runtime (runtime.indexes), beside the outbox relay's own index.
INDEXES: dict[str, list[IndexModel]] = {
    "orders": [*_listing_indexes(), IndexModel([("number_pending", ASCENDING), (LIST_KEYS["created_at"], ASCENDING)])],
    "bulk_jobs": bulk_worker.INDEXES,
    # GET /orders?q=: the orders holding a term, newest or oldest first (services/orders/search.py).
    "order_terms": [IndexModel([("term", ASCENDING), (LIST_KEYS["created_at"], ASCENDING)])],
}

BACKFILL_BATCH = 500


async def backfill_list_keys(database: Database) -> int:
    """Give orders stored before the listing keys existed their keys, so that they are listed.

    Orders without a key sort first on its index (a missing value sorts before any string on
    MongoDB and on the embedded store): one look at the first order says whether there is
    anything to do, and each batch is an index walk from the start.
    """

    def keys_of(doc: Document) -> dict[str, str]:
        return list_keys(doc["_id"], doc["created_at"], doc.get("fulfill_by_sort") or NO_DEADLINE)

    updated = 0
    for key in LIST_KEYS.values():
        updated += await backfill(database["orders"], {}, key, keys_of, BACKFILL_BATCH)
    if updated:
        log.info("gave %d stored orders their listing keys", updated)
    return updated
