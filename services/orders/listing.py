"""How GET /orders pages: its sort orders, the query of one page, and the keyset cursor.

Each sort order is one stored key per order (store.LIST_KEYS: the sort fields and the order id,
so no two orders tie), so "the page after this order" is one range condition on an indexed field
and costs the same on page 1 and page 1,000, whatever the number of orders. limit/offset stays
for small lists; a deep offset still walks the orders it skips.

The cursor is opaque to clients: base64url of {"v": 1, "s": <sort>, "k": <key of the last order
shown>}. It is a position, not a permission (anyone may list orders they can list), so it is
not signed; a cursor that does not decode, or was made for another sort order, is refused with
the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from services.orders import store
from services.orders.domain import Order
from shared.aggregates import Document
from shared.catalog import DisplayFulfillmentStatus, FinancialStatus

OrderSort = Literal["fulfill_by", "created_at", "-created_at"]

# sort -> (stored key, direction)
SORTS: dict[str, tuple[str, int]] = {
    # Earliest deadline first; orders without one last (shared.clock.NO_DEADLINE), oldest first.
    "fulfill_by": (store.LIST_KEYS["fulfill_by"], 1),
    "created_at": (store.LIST_KEYS["created_at"], 1),
    "-created_at": (store.LIST_KEYS["created_at"], -1),
}

CURSOR_VERSION = 1
MAX_KEY_CHARS = 512


class InvalidCursor(ValueError):
    """A cursor this service did not make, or made for another sort order; the message says which."""


@dataclass(frozen=True)
class Page:
    """What to ask the store for one page: the filter (with the cursor's range) and the sort."""

    query: Document
    sort: list[tuple[str, int]]
    key: str


def encode_cursor(sort: str, key: str) -> str:
    body = json.dumps({"v": CURSOR_VERSION, "s": sort, "k": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, sort: str) -> str:
    """The key of the last order of the previous page; InvalidCursor if it is not one of ours for `sort`."""
    try:
        raw: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidCursor("not a cursor this service returned (take next_cursor as it came)") from None
    if not isinstance(raw, dict) or raw.get("v") != CURSOR_VERSION or not isinstance(raw.get("s"), str):
        raise InvalidCursor("not a cursor this service returned (take next_cursor as it came)")
    if raw["s"] != sort:
        raise InvalidCursor(f"the cursor continues sort={raw['s']}, not sort={sort}: keep the sort of the first page")
    key = raw.get("k")
    if not isinstance(key, str) or not key.startswith(store.LIST_KEY_PREFIX) or len(key) > MAX_KEY_CHARS:
        raise InvalidCursor("not a cursor this service returned (take next_cursor as it came)")
    return key


def filters(financial_status: FinancialStatus | None, fulfillment_status: DisplayFulfillmentStatus | None) -> Document:
    """The store filter of the listing's filters, each an `$eq` (see store.INDEXES)."""
    query: Document = {}
    if financial_status:
        query["financial_status"] = {"$eq": financial_status.value}
    if fulfillment_status:
        query["fulfillment_status"] = {"$eq": fulfillment_status.value}
    return query


def page(filters: Document, sort: str, after: str | None) -> Page:
    """The query for one page of orders matching `filters` (each an `$eq`), after `after` if given."""
    key, direction = SORTS[sort]
    query = dict(filters)
    if after is not None:
        query[key] = {"$gt" if direction == 1 else "$lt": decode_cursor(after, sort)}
    return Page(query=query, sort=[(key, direction)], key=key)


def next_cursor(sort: str, found: list[Order], limit: int) -> str | None:
    """The cursor of the page after `found` (asked for limit + 1), or None when there is none."""
    if len(found) <= limit:
        return None
    key, _ = SORTS[sort]
    return encode_cursor(sort, store.list_key(found[limit - 1], key))
