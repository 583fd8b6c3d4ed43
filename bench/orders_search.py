"""Order search (`GET /orders?q=&custom_status=&warehouse_status=...`) with many orders stored:
p50 latency of each search shape.

    python -m bench.orders_search [--orders 10000] [--samples 15]

Starts the broker, the store and the orders service on free ports, seeds the orders directly
into the store as the service stores them (bench.orders_list's orders, numbered #1001..., every
tenth with a custom status, every seventh with a comment) with their search terms, then times
each shape one request at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from bench.harness import embedded_stack  # noqa: E402
from bench.orders_list import p50, stored_order  # noqa: E402
from deploy.local_stack import LocalStack  # noqa: E402
from services.orders import search, store  # noqa: E402
from services.orders.domain import Comment  # noqa: E402
from shared.store import Document  # noqa: E402


def shapes(orders: int) -> dict[str, dict[str, Any]]:
    middle = 1001 + orders // 2
    return {
        f"q=#{middle} (a number)": {"q": f"#{middle}"},
        f"q=buyer{orders // 3}@example.com": {"q": f"buyer{orders // 3}@example.com"},
        "q=sku-42 (1 order in 97)": {"q": "sku-42", "limit": 50},
        "q=fragile (comment, 1 in 7)": {"q": "fragile", "limit": 50},
        "custom_status=vip (1 in 10)": {"custom_status": "vip", "limit": 50},
        "warehouse_status=order": {"warehouse_status": "order", "limit": 50},
        "custom_status=vip&financial_status=paid": {"custom_status": "vip", "financial_status": "paid", "limit": 50},
        "q=sku-42&total_min=200": {"q": "sku-42", "total_min": "200", "limit": 50},
        "created range, sort=created_at": {"created_from": "2026-01-01T01:00:00Z",
                                           "created_to": "2026-01-01T02:00:00Z", "sort": "created_at"},
    }  # fmt: skip


def searchable(i: int) -> tuple[Document, list[Document]]:
    """One stored order, numbered, with its terms."""
    document = stored_order(i)
    order = store.MAPPING.load({"id": document["_id"], **document})
    order = replace(order, number=1001 + i, custom_status="vip" if i % 10 == 0 else None)
    if i % 7 == 0:
        order = replace(order, comments=(Comment(id="c", text="Fragile: wrap twice", at=order.created_at),))
    stored = {**document, **store.MAPPING.dump(order)}
    stored.pop("id", None)
    key = stored[store.LIST_KEYS["created_at"]]
    terms = [{"_id": search.term_id(term, order.id), "term": term, "order_id": order.id,
              store.LIST_KEYS["created_at"]: key} for term in search.terms_of(order)]  # fmt: skip
    return stored, terms


async def seed(uri: str, count: int) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri)
    try:
        database = client["orders"]
        for first in range(0, count, 1000):
            batch = [searchable(i) for i in range(first, min(first + 1000, count))]
            await database["orders"].insert_many([order for order, _ in batch])
            await database["order_terms"].insert_many([term for _, terms in batch for term in terms])
        await database["custom_statuses"].insert_one({"_id": "shop", "names": {"vip": "VIP"}, "version": 1})
    finally:
        await client.close()


async def measure(stack: LocalStack, count: int, samples: int) -> None:
    await seed(stack.mongodb_uri, count)
    url = stack.url("orders") + "/orders"
    async with httpx.AsyncClient(timeout=120, headers=stack.admin_headers()) as http:
        await p50(http, url, {"limit": 50}, 2)  # warm up
        print(f"GET /orders p50 with {count} orders stored ({samples} requests each, one at a time):")
        for shape, params in shapes(count).items():
            found = len((await http.get(url, params=params)).json()["items"])
            print(f"  {shape:<44} p50 {await p50(http, url, params, samples):8.1f} ms  ({found} on the page)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    with embedded_stack("orders-search", ["orders"]) as stack:
        asyncio.run(measure(stack, args.orders, args.samples))


if __name__ == "__main__":
    main()
