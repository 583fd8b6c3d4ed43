"""GET /orders's keyset pagination without I/O: the listing keys and the opaque cursor."""

from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import replace

import pytest
from neosqlite.collection.datetime_utils import is_datetime_value

from services.orders import domain, listing, store
from services.orders.listing import InvalidCursor
from shared.aggregates import Document
from tests.unit.test_order_rules import order_request


def an_order(created_at: str, fulfill_by: str | None = None) -> Document:
    """An order as stored: the store mapping gives it its listing keys."""
    order = domain.place(order_request(), created_at, str(uuid.uuid4())).document
    return store.MAPPING.dump(replace(order, fulfill_by=fulfill_by))


@pytest.mark.parametrize("sort", sorted(listing.SORTS))
def test_a_cursor_decodes_to_the_key_it_was_made_from(sort: str) -> None:
    key = an_order("2026-01-01T00:00:00.000000+00:00")[listing.SORTS[sort][0]]
    cursor = listing.encode_cursor(sort, key)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe as it is
    assert listing.decode_cursor(cursor, sort) == key


def test_a_cursor_made_for_another_sort_is_refused_saying_which() -> None:
    key = an_order("2026-01-01T00:00:00.000000+00:00")["sort_created_at"]
    cursor = listing.encode_cursor("created_at", key)
    with pytest.raises(InvalidCursor, match="continues sort=created_at, not sort=-created_at"):
        listing.decode_cursor(cursor, "-created_at")


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        _raw(["a list"]),
        _raw({"v": 2, "s": "created_at", "k": "~2026-01-01T00:00:00.000000+00:00|x"}),
        _raw({"v": 1, "s": "created_at"}),
        _raw({"v": 1, "s": "created_at", "k": 5}),
        # A key that looks like a date would send the store down its slow path: never taken.
        _raw({"v": 1, "s": "created_at", "k": "2026-01-01T00:00:00.000000+00:00|x"}),
        _raw({"v": 1, "s": "created_at", "k": "~" + "x" * 600}),
    ],
)
def test_a_cursor_this_service_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="not a cursor this service returned"):
        listing.decode_cursor(cursor, "created_at")


def test_a_page_is_one_range_on_the_sort_key_beside_the_equality_filters() -> None:
    filters = {"financial_status": {"$eq": "paid"}}
    first = listing.page(filters, "fulfill_by", None)
    assert first.query == filters and first.sort == [("sort_fulfill_by", 1)]
    cursor = listing.encode_cursor("-created_at", "~2026-01-01T00:00:00.000000+00:00|o-1")
    after = listing.page(filters, "-created_at", cursor)
    assert after.query == {**filters, "sort_created_at": {"$lt": "~2026-01-01T00:00:00.000000+00:00|o-1"}}
    assert after.sort == [("sort_created_at", -1)]
    assert filters == {"financial_status": {"$eq": "paid"}}, "the caller's filters are left as they were"


def test_there_is_a_next_cursor_only_when_more_orders_follow() -> None:
    stored = [an_order(f"2026-01-01T00:00:0{i}.000000+00:00") for i in range(3)]
    found = [store.MAPPING.load(doc) for doc in stored]
    assert listing.next_cursor("created_at", found, 3) is None
    assert listing.next_cursor("created_at", found[:2], 3) is None
    cursor = listing.next_cursor("created_at", found, 2)
    assert cursor is not None and listing.decode_cursor(cursor, "created_at") == stored[1]["sort_created_at"]


def test_the_listing_keys_order_orders_by_deadline_then_creation_then_id_with_no_ties() -> None:
    rng = random.Random(15)
    times = [f"2026-01-0{d}T0{h}:00:00.000000+00:00" for d in range(1, 4) for h in range(3)]
    orders = [an_order(rng.choice(times), rng.choice([None, *times])) for _ in range(300)]  # many equal times
    by_rule = sorted(orders, key=lambda o: (o["fulfill_by_sort"], o["created_at"], o["id"]))
    assert sorted(orders, key=lambda o: str(o["sort_fulfill_by"])) == by_rule
    by_creation = sorted(orders, key=lambda o: (o["created_at"], o["id"]))
    assert sorted(orders, key=lambda o: str(o["sort_created_at"])) == by_creation
    assert len({o["sort_fulfill_by"] for o in orders}) == len(orders), "the order id breaks every tie"


def test_no_listing_key_looks_like_a_date_to_the_embedded_store() -> None:
    """A range over a date-like string is compared on the embedded store's slow path, which reads
    every document: the keys start with a character no date starts with."""
    order = an_order("2026-01-01T00:00:00.000000+00:00", "2026-02-01T00:00:00.000000+00:00")
    for key in store.LIST_KEYS.values():
        assert not is_datetime_value(order[key]), key
    assert is_datetime_value(order["created_at"]), "the check itself sees a bare time as a date"
