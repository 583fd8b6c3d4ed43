"""`GET /fulfillment-orders` over thousands of stored fulfillment orders (issue 15: "`GET
/fulfillment-orders?order_id=` 9 / 72 / 341 ms [...] with 20 / 5,070 / 20,000 orders stored"):
the right ones by order, and keyset pagination (`after` / `next_cursor`) that returns every one
exactly once, in the listing's order, even while more are stored between two pages.

The fulfillment orders are seeded straight into the session stack's store, made by the service's
own rule (`fo_rules.create`), at a location of their own so that nothing else is listed with them.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from deploy.local_stack import LocalStack
from services.fulfillment.domain import order_routing
from shared.catalog import OrderSnapshot
from shared.store import Document, now_iso
from tests import fulfillment_documents as fo_rules

SEEDED = 2_400
DEADLINE = "2030-01-01T00:00:00.000000+00:00"


def order_snapshot(order_id: str, lines: int) -> OrderSnapshot:
    return OrderSnapshot.model_validate({
        "id": order_id, "customer": {"email": "b@example.com", "name": "B"}, "currency": "SEK",
        "financial_status": "paid", "created_at": now_iso(),
        "line_items": [{"id": f"{order_id}-{n}", "sku": f"SKU-{n}", "title": "x", "quantity": 1, "unit_price": "1"}
                       for n in range(lines)],
    })  # fmt: skip


def stored(order: OrderSnapshot, index: int, location_id: str, fulfill_by: str | None = None) -> Document:
    """A fulfillment order as the service stores it: made by its rule, in the store's layout."""
    line = order.line_items[index - 1]
    entry = {
        "index": index, "fulfillment_order_id": order_routing.fulfillment_order_id(order.id, index),
        "kind": "shipping", "location_id": location_id, "location_name": "Scale", "fulfillment_service": None,
        "lines": [{"line_item_id": line.id, "sku": line.sku, "quantity": 1, "requires_shipping": True,
                   "digital_asset_url": None}],
        "reason": "seeded", "holds": [], "fulfill_at": None, "fulfill_by": fulfill_by, "auto_fulfill": False,
        "excluded_locations": [], "replaced_by": None, "planned_at": now_iso(),
    }  # fmt: skip
    doc = dict(fo_rules.create(entry, order, now_iso()).document)
    doc["_id"] = doc.pop("id")
    doc.update(version=1, inbox={}, outbox={}, outbox_pending=False)
    return doc


@pytest.fixture(scope="module")
async def seeded(stack: LocalStack) -> dict[str, Any]:
    """SEEDED fulfillment orders at one location: orders of one, two or three, some with a deadline."""
    location_id = f"scale-{uuid.uuid4().hex[:8]}"
    docs: list[Document] = []
    by_order: dict[str, list[str]] = {}
    while len(docs) < SEEDED:
        lines = 1 + len(by_order) % 3
        order = order_snapshot(str(uuid.uuid4()), lines)
        for index in range(1, lines + 1):
            deadline = DEADLINE if len(docs) % 7 == 0 else None
            docs.append(stored(order, index, location_id, deadline))
            by_order.setdefault(order.id, []).append(docs[-1]["_id"])
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongodb_uri)
    try:
        collection = client["fulfillment"]["fulfillment_orders"]
        for start in range(0, len(docs), 500):
            await collection.insert_many(docs[start : start + 500])
    finally:
        await client.close()
    in_order = sorted(docs, key=lambda doc: (doc["sort_fulfill_by"], doc["created_at"], doc["_id"]))
    return {"location_id": location_id, "by_order": by_order, "in_order": [doc["_id"] for doc in in_order]}


async def listed(stack: LocalStack, http: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await http.get(f"{stack.url('fulfillment')}/fulfillment-orders", params=params)


async def test_listing_by_order_among_thousands_returns_just_that_order_s(
    stack: LocalStack, http: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    orders = list(seeded["by_order"].items())
    for order_id, fo_ids in (orders[0], orders[len(orders) // 2], orders[-1]):
        reply = await listed(stack, http, order_id=order_id)
        assert reply.status_code == 200, reply.text
        items = reply.json()["items"]
        assert sorted(fo["id"] for fo in items) == sorted(fo_ids)
        assert {fo["order_id"] for fo in items} == {order_id}
        assert reply.json()["next_cursor"] is None
        assert "sort_key" not in items[0] and "opens_at_epoch" not in items[0], "internal fields stay inside"
    order_id, fo_ids = orders[2]  # three fulfillment orders: a page of two, then the last
    first = (await listed(stack, http, order_id=order_id, limit=2)).json()
    second = (await listed(stack, http, order_id=order_id, limit=2, after=first["next_cursor"])).json()
    assert [fo["id"] for fo in first["items"] + second["items"]] == [i for i in seeded["in_order"] if i in fo_ids]
    assert second["next_cursor"] is None
    assert (await listed(stack, http, order_id=order_id, status="CLOSED")).json()["items"] == []


async def test_keyset_pages_return_every_fulfillment_order_once_in_the_listing_s_order(
    stack: LocalStack, http: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"location_id": seeded["location_id"], "limit": 250}
        if cursor:
            params["after"] = cursor
        reply = await listed(stack, http, **params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        seen += [fo["id"] for fo in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == SEEDED, "each one once"
    assert seen == seeded["in_order"], "soonest deadline first, then oldest, as the listing promises"
    assert pages == -(-SEEDED // 250)
    # The same filter with a status (served by the compound index), and offset still works beside it.
    opened = await listed(stack, http, location_id=seeded["location_id"], status="OPEN", limit=5, offset=3)
    assert [fo["id"] for fo in opened.json()["items"]] == seeded["in_order"][3:8]


async def test_a_page_after_a_cursor_neither_repeats_nor_skips_when_more_are_stored_meanwhile(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    location_id = f"scale-{uuid.uuid4().hex[:8]}"
    order = order_snapshot(str(uuid.uuid4()), 3)
    middle, late = stored(order, 2, location_id), stored(order, 3, location_id)
    early = stored(order, 1, location_id, fulfill_by=DEADLINE)  # a deadline sorts it first
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongodb_uri)
    collection = client["fulfillment"]["fulfillment_orders"]
    try:
        await collection.insert_many([middle, late])
        first = (await listed(stack, http, location_id=location_id, limit=1)).json()
        assert [fo["id"] for fo in first["items"]] == [middle["_id"]]
        await collection.insert_one(early)  # stored between two pages, sorting before the cursor
        rest = (await listed(stack, http, location_id=location_id, after=first["next_cursor"])).json()
        assert [fo["id"] for fo in rest["items"]] == [late["_id"]]
    finally:
        await client.close()


@pytest.mark.parametrize("cursor", ["not-a-cursor", "a2FwdXR0", "%%%", "x" * 401])
async def test_a_cursor_the_listing_did_not_return_is_refused_naming_after(
    stack: LocalStack, http: httpx.AsyncClient, cursor: str
) -> None:
    reply = await listed(stack, http, after=cursor)
    assert reply.status_code == 422, reply.text
    assert "after" in reply.text
