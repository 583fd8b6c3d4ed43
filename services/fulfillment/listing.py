"""`GET /fulfillment-orders`: the filters, the listing's order, and keyset pagination.

Every page is one index range whatever is stored (see store.INDEXES): the listing's order
(fulfill-by deadline, then creation, then id) is one field, `sort_key`, so a page resumes after
the last one's value (`?after=<next_cursor>`) instead of skipping `offset` documents. Filtering
by order reads that order's fulfillment orders by the order_id index alone and filters the rest
in memory: an order has few, and with a second filter the store's planner may pick the other
filter's index and walk all of its documents.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder
from services.fulfillment.store import listing_key
from shared.store import AggregateStore, Filter

SORT = [("sort_key", 1)]
MAX_PER_ORDER = 1_000
"""Bound of a read of one order's fulfillment orders (far above what one order ever has)."""


class BadCursor(ValueError):
    """`after` is not a cursor this listing returned."""


def encode_cursor(sort_key: str) -> str:
    """Opaque to callers: where the next page starts."""
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise BadCursor(cursor) from None
    if not sort_key.startswith("k") or sort_key.count("|") < 2:
        raise BadCursor(cursor)
    return sort_key


@dataclass(frozen=True)
class Filters:
    order_id: str | None = None
    status: str | None = None
    location_id: str | None = None
    warehouse_status: str | None = None
    fulfillment_services: Sequence[str] | None = None
    """Only these fulfillment services' fulfillment orders (a fulfillment service's token); None: all."""

    def matches(self, fo: FulfillmentOrder) -> bool:
        return (
            (self.status is None or fo.status == self.status)
            and (self.location_id is None or fo.location_id == self.location_id)
            and (self.warehouse_status is None or fo.warehouse_status == self.warehouse_status)
            and (self.fulfillment_services is None or fo.fulfillment_service in self.fulfillment_services)
        )


async def page(
    store: AggregateStore[FulfillmentOrder], filters: Filters, *, after: str | None, offset: int, limit: int
) -> tuple[list[FulfillmentOrder], str | None]:
    """Up to `limit` fulfillment orders in the listing's order, after the cursor `after` (a decoded
    one) and `offset` more; and the cursor of the next page, None when this is the last."""
    if filters.fulfillment_services is not None and not filters.fulfillment_services:
        return [], None
    if filters.order_id:
        found = await store.find({"order_id": {"$eq": filters.order_id}}, sort=SORT, limit=MAX_PER_ORDER)
        wanted = [fo for fo in found if filters.matches(fo) and (after is None or listing_key(fo) > after)]
        window = wanted[offset : offset + limit + 1]
    else:
        query: Filter = {}
        if filters.status:
            query["status"] = {"$eq": filters.status}
        if filters.location_id:
            query["location_id"] = {"$eq": filters.location_id}
        if filters.warehouse_status:
            query["warehouse_status"] = {"$eq": filters.warehouse_status}
        if after is not None:
            query["sort_key"] = {"$gt": after}
        if filters.fulfillment_services is None:
            window = await store.find(query, sort=SORT, skip=offset, limit=limit + 1)
        else:  # one indexed query per service ($in would scan), merged in the listing's order
            merged: list[FulfillmentOrder] = []
            for service in sorted(set(filters.fulfillment_services)):
                merged += await store.find(
                    {**query, "fulfillment_service": {"$eq": service}}, sort=SORT, limit=offset + limit + 1
                )
            window = sorted(merged, key=listing_key)[offset : offset + limit + 1]
    items = window[:limit]
    more = len(window) > limit
    return items, encode_cursor(listing_key(items[-1])) if more and items else None
