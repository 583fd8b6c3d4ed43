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
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from services.orders import search, store
from services.orders.domain import Order, warehouse_status
from shared.catalog import DisplayFulfillmentStatus, FinancialStatus, WarehouseStatus
from shared.store import Filter

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

    query: Filter
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


def filters(financial_status: FinancialStatus | None, fulfillment_status: DisplayFulfillmentStatus | None) -> Filter:
    """The store filter of the listing's filters, each an `$eq` (see store.INDEXES)."""
    query: Filter = {}
    if financial_status:
        query["financial_status"] = {"$eq": financial_status.value}
    if fulfillment_status:
        query["fulfillment_status"] = {"$eq": fulfillment_status.value}
    return query


def page(filters: Mapping[str, object], sort: str, after: str | None) -> Page:
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


# --- search: the filters beyond the two above ---------------------------------------------------


@dataclass(frozen=True)
class OrderFilters:
    """Everything `GET /orders` filters by. Times in the stored form (shared.clock.iso)."""

    financial_status: FinancialStatus | None = None
    fulfillment_status: DisplayFulfillmentStatus | None = None
    warehouse_status: WarehouseStatus | None = None
    custom_status: str | None = None
    q: str | None = None
    created_from: str | None = None
    created_to: str | None = None
    total_min: Decimal | None = None
    total_max: Decimal | None = None


@dataclass(frozen=True)
class Plan:
    """How to find one page: walk an index of `orders` (`query`, sorted by `key`) or, for a `q`,
    the order_terms of its first word (`term`, within `bounds`); then keep the orders that match
    every filter (`matches`). `exact`: the store's filter is the whole search, so an offset and a
    total are the store's to give."""

    query: Filter
    bounds: Filter
    sort: list[tuple[str, int]]
    key: str
    exact: bool
    term: str | None


class Unsupported(ValueError):
    """A combination the search does not answer from an index; `field` names the parameter."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def plan(wanted: OrderFilters, sort: str, after: str | None) -> Plan:
    """The walk for one page of a search (see Plan); Unsupported when no index answers it."""
    key, direction = SORTS[sort]
    words = search.tokens(wanted.q or "")
    if wanted.q is not None and not words:
        raise Unsupported("query.q", "give at least one word, number, email or sku")
    if words and key != store.LIST_KEYS["created_at"]:
        raise Unsupported("query.sort", "a search by q sorts by created_at or -created_at")
    bounds = _bounds(wanted, key, direction, after)
    if wanted.custom_status is not None:
        query: Filter = {"custom_status": {"$eq": wanted.custom_status}}
    elif wanted.warehouse_status is not None:
        query = {"warehouse_status": {"$eq": wanted.warehouse_status.value}}
    else:
        query = filters(wanted.financial_status, wanted.fulfillment_status)
    checked_apart = (
        (wanted.custom_status is not None or wanted.warehouse_status is not None)
        and (wanted.financial_status is not None or wanted.fulfillment_status is not None)
    ) or (wanted.custom_status is not None and wanted.warehouse_status is not None)
    created_apart = key != store.LIST_KEYS["created_at"] and (wanted.created_from or wanted.created_to)
    totals = wanted.total_min is not None or wanted.total_max is not None
    exact = not (words or checked_apart or created_apart or totals)
    if bounds:
        query[key] = bounds
    return Plan(query, bounds, [(key, direction)], key, exact, words[0] if words else None)


def _bounds(wanted: OrderFilters, key: str, direction: int, after: str | None) -> Filter:
    """The one range on the sort key: the cursor's, and the created-at range when sorting by it."""
    lower: list[str] = []
    upper: list[str] = []
    if after is not None:
        (lower if direction == 1 else upper).append(decode_cursor(after, _sort_of(key, direction)))
    if key == store.LIST_KEYS["created_at"]:
        if wanted.created_from:
            lower.append(f"{store.LIST_KEY_PREFIX}{wanted.created_from}")  # "~<time>|id" > "~<time>"
        if wanted.created_to:
            upper.append(f"{store.LIST_KEY_PREFIX}{wanted.created_to}}}")  # "}" follows "|": that second included
    bounds: Filter = {}
    if lower:
        bounds["$gt"] = max(lower)
    if upper:
        bounds["$lt"] = min(upper)
    return bounds


def _sort_of(key: str, direction: int) -> str:
    return next(name for name, (k, d) in SORTS.items() if k == key and d == direction)


def total(order: Order) -> Decimal:
    return sum((line.unit_price * line.quantity for line in order.line_items), Decimal(0))


def matches(order: Order, wanted: OrderFilters) -> bool:
    """The order passes every filter of the search (what an index walk could not check)."""
    checks = (
        wanted.financial_status is None or order.financial_status == wanted.financial_status,
        wanted.fulfillment_status is None or order.fulfillment_status == wanted.fulfillment_status,
        wanted.warehouse_status is None or warehouse_status(order) == wanted.warehouse_status,
        wanted.custom_status is None or order.custom_status == wanted.custom_status,
        wanted.created_from is None or order.created_at >= wanted.created_from,
        wanted.created_to is None or order.created_at <= wanted.created_to,
        wanted.total_min is None or total(order) >= wanted.total_min,
        wanted.total_max is None or total(order) <= wanted.total_max,
    )
    return all(checks) and (wanted.q is None or set(search.tokens(wanted.q)) <= search.terms_of(order))
