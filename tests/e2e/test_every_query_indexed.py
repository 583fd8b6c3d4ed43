"""Every query the services send to the store is answered from an index, on a real query plan.

The session stack's services log each distinct query shape they send (STORE_QUERY_LOG): what this
module's own flow makes them do, and whatever tests ran before it in the session. Each logged
filter is explained by the store (nx-27017 answers with SQLite's plan: `SEARCH ... USING INDEX`
or `SCAN`; MongoDB with IXSCAN or COLLSCAN). Some shapes are refused outright because the embedded
store scans for them whatever the indexes: `$or`, `$expr`, `$exists`, `$ne` and the like, bare
equality on a field other than `_id` outside `find`, and an unbounded `find` with no filter. A
lookup by `_id` (with conditions on that one document) is the primary key's, on both stores.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import json_util
from pymongo import AsyncMongoClient

from deploy.local_stack import LocalStack
from tests.conftest import eventually

pytestmark = pytest.mark.e2e

SERVICE_DATABASES = ("orders", "inventory", "fulfillment", "notifications")
# Answered by reading every document in Python, whatever else the filter says (even an _id).
OPERATORS_READ_IN_PYTHON = ("$or", "$and", "$nor", "$not", "$expr", "$where")
# Translated, but never from an index: fine only beside an _id.
OPERATORS_THAT_SCAN = ("$ne", "$exists", "$regex")


def logged_queries(stack: LocalStack) -> list[dict[str, Any]]:
    directory = Path(stack.data_dir) / "queries"
    lines: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        lines.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [q for q in lines if q["database"] in SERVICE_DATABASES]


def plan_uses_an_index(explained: dict[str, Any]) -> bool:
    text = json.dumps(explained.get("queryPlanner", explained))
    if "COLLSCAN" in text:
        return False
    return "USING INDEX" in text or "USING PRIMARY KEY" in text or "IXSCAN" in text or "IDHACK" in text


def by_primary_key(filter_: dict[str, Any]) -> bool:
    """A lookup of one document by `_id` (plus conditions checked on that document alone)."""
    key = filter_.get("_id")
    return key is not None and (not isinstance(key, dict) or set(key) <= {"$eq", "$in"})


def shape_problem(query: dict[str, Any], filter_: dict[str, Any]) -> str | None:
    """A shape the embedded store scans for whatever the indexes say."""
    text = json.dumps(filter_)
    for operator in OPERATORS_READ_IN_PYTHON:
        if f'"{operator}"' in text:
            return f"uses {operator} (the embedded store reads every document for it)"
    if by_primary_key(filter_):
        return None
    for operator in OPERATORS_THAT_SCAN:
        if f'"{operator}"' in text:
            return f"uses {operator}"
    if query["command"] == "find" and not filter_ and not query.get("limit"):
        return "an unbounded find with no filter"
    if query["command"] != "find":
        for field, value in filter_.items():
            if field != "_id" and not (isinstance(value, dict) and any(k.startswith("$") for k in value)):
                return f"bare equality on {field!r} (write it {{'$eq': ...}})"
    return None


async def drive_a_day(stack: LocalStack, http: httpx.AsyncClient) -> None:
    """The queries of an ordinary day: stock, orders paid and fulfilled, lists, a shipment."""
    tag = uuid.uuid4().hex[:8]
    sku, location = f"MUG-{tag}", f"wh-{tag}"
    await http.put(f"{stack.url('inventory')}/locations/{location}", json={"name": "Index check"})
    await http.put(f"{stack.url('inventory')}/stock/{location}/{sku}", json={"on_hand": 5})

    async def routing_sees_it() -> bool:
        view = (await http.get(f"{stack.url('fulfillment')}/routing/stock/{sku}")).json()
        # The stock, not only the location (an order placed before it would wait for it).
        return any(level["location_id"] == location and level["available"] == 5 for level in view.get("locations", []))

    await eventually(routing_sees_it, timeout=30)
    order = {
        "customer": {"email": f"buyer+{tag}@example.com", "name": "Index Buyer"},
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122", "country_code": "SE"},
        "currency": "SEK", "financial_status": "paid",
        "line_items": [{"sku": sku, "title": "Mug", "quantity": 1, "unit_price": "10.00"}],
    }  # fmt: skip
    order_id = (await http.post(f"{stack.url('orders')}/orders", json=order)).json()["id"]

    async def open_fulfillment_order() -> list[dict[str, Any]]:
        reply = await http.get(f"{stack.url('fulfillment')}/fulfillment-orders", params={"order_id": order_id})
        return [fo for fo in reply.json()["items"] if fo["reservation_status"] == "RESERVED"]

    [fo] = await eventually(open_fulfillment_order, timeout=30)
    shipped = await http.post(
        f"{stack.url('fulfillment')}/fulfillment-orders/{fo['id']}/fulfillments", json={"notify_customer": True}
    )
    assert shipped.status_code == 201, shipped.text
    for params in ({}, {"financial_status": "paid"}, {"fulfillment_status": "FULFILLED"}, {"sort": "created_at"},
                   {"sort": "-created_at"}):  # fmt: skip
        assert (await http.get(f"{stack.url('orders')}/orders", params=params)).status_code == 200
    for params in ({"status": "OPEN"}, {"location_id": location}, {}):
        assert (await http.get(f"{stack.url('fulfillment')}/fulfillment-orders", params=params)).status_code == 200
    await http.get(f"{stack.url('fulfillment')}/fulfillments/{shipped.json()['id']}")
    await http.get(f"{stack.url('inventory')}/stock/{sku}")
    await http.get(f"{stack.url('inventory')}/reservations", params={"order_id": order_id})

    async def emailed() -> bool:
        reply = await http.get(f"{stack.url('notifications')}/notifications", params={"order_id": order_id})
        return any(n["status"] == "sent" for n in reply.json()["items"])

    await eventually(emailed, timeout=30)


async def unindexed(mongodb_uri: str, queries: list[dict[str, Any]]) -> list[str]:
    """Each logged query shape the store would not answer from an index, and why."""
    problems: list[str] = []
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        for query in queries:
            filter_ = json_util.loads(query["filter"])
            where = f"{query['database']}.{query['collection']} {query['command']} {json.dumps(filter_)[:160]}"
            problem = shape_problem(query, filter_)
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            if not filter_ or by_primary_key(filter_):
                continue  # a bounded listing, or one document by its key
            explained = await client[query["database"]].command(
                "explain", {"find": query["collection"], "filter": filter_}
            )
            if not plan_uses_an_index(explained):
                plan = json.dumps(explained.get("queryPlanner", {}).get("winningPlan", explained))[:200]
                problems.append(f"{where}: scans ({plan})")
    finally:
        await client.close()
    return sorted(problems)


async def test_every_query_of_the_services_is_served_by_an_index(stack: LocalStack, http: httpx.AsyncClient) -> None:
    await drive_a_day(stack, http)
    queries = logged_queries(stack)
    assert len(queries) > 20, "the services logged their queries"
    problems = await unindexed(stack.mongodb_uri, queries)
    assert not problems, f"{len(problems)} of {len(queries)} query shapes are not served by an index:\n" + "\n".join(
        problems
    )
