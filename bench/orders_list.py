"""How `GET /orders` grows with the orders stored: p50 latency at each size.

    python -m bench.orders_list [--sizes 0,5000,20000] [--samples 15]

Starts the broker, the store and the orders service on free ports, then for each size seeds the
orders collection directly through the store (documents built by the domain rules: placed paid
or pending, a third of them with a fulfillment order and a fulfill-by deadline, as the service
would have stored them) and times each listing shape, one request at a time. The ratio column
compares each size with the first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from bench.harness import embedded_stack  # noqa: E402
from deploy.local_stack import LocalStack  # noqa: E402
from services.orders import domain, store  # noqa: E402
from shared.catalog import FulfillmentOrderChanged  # noqa: E402
from shared.events import new_event  # noqa: E402
from shared.store import Document  # noqa: E402

SHAPES: dict[str, dict[str, Any]] = {
    "limit=50": {"limit": 50},
    "financial_status=paid": {"limit": 50, "financial_status": "paid"},
    "fulfillment_status=UNFULFILLED": {"limit": 50, "fulfillment_status": "UNFULFILLED"},
    "sort=created_at": {"limit": 50, "sort": "created_at"},
    "sort=-created_at": {"limit": 50, "sort": "-created_at"},
    "after=<page 1's next_cursor>": {"limit": 50, "after": "NEXT_CURSOR"},
}
START = datetime(2026, 1, 1, tzinfo=UTC)


def request(i: int) -> dict[str, Any]:
    return {
        "customer": {"email": f"buyer{i}@example.com", "name": f"Buyer {i}"},
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122", "country_code": "SE"},
        "currency": "SEK", "financial_status": "paid" if i % 4 else "pending", "post_purchase_pending": False,
        "line_items": [{"sku": f"SKU-{i % 97}", "title": "Mug", "quantity": 1 + i % 3, "unit_price": "99.00",
                        "requires_shipping": True, "digital_asset_url": None}],
    }  # fmt: skip


def stored_order(i: int) -> Document:
    """One order as the service stores it: placed by the domain, a third with a fulfillment order."""
    created = (START + timedelta(seconds=i)).isoformat(timespec="microseconds")
    order = domain.place(domain.NewOrder.model_validate(request(i)), created, str(uuid.uuid4())).document
    if i % 3 == 0:
        fo = {
            "id": str(uuid.uuid4()), "order_id": order.id, "location_id": "wh-1",
            "status": "ON_HOLD" if i % 2 else "OPEN",
            "holds": [{"reason": "HIGH_RISK_OF_FRAUD"}] if i % 2 else [],
            "fulfill_by": (START + timedelta(days=30, minutes=i % 5000)).isoformat(),
            "line_items": [{"line_item_id": line.id, "sku": line.sku, "quantity": line.quantity}
                           for line in order.line_items],
            "created_at": created, "updated_at": created,
        }  # fmt: skip
        changed = FulfillmentOrderChanged.model_validate({"fulfillment_order": fo})
        event = new_event("fulfillment", "fulfillment_order.created", order.id, changed)
        order = domain.record_fulfillment_order(order, event, changed.fulfillment_order, created).document
    document = store.MAPPING.dump(order)
    order_id = document.pop("id")
    return {"_id": order_id, **document, "version": 1, "inbox": {}, "outbox": {}, "outbox_pending": False}


async def seed(uri: str, start: int, stop: int) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri)
    try:
        collection = client["orders"]["orders"]
        for first in range(start, stop, 1000):
            await collection.insert_many([stored_order(i) for i in range(first, min(first + 1000, stop))])
    finally:
        await client.close()


async def p50(http: httpx.AsyncClient, url: str, params: dict[str, Any], samples: int) -> float:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        reply = await http.get(url, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, reply.text
    return statistics.median(timings)


async def measure(stack: LocalStack, sizes: list[int], samples: int) -> None:
    url = stack.url("orders") + "/orders"
    results: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    stored = 0
    async with httpx.AsyncClient(timeout=120, headers=stack.admin_headers()) as http:
        for size in sizes:
            started = time.perf_counter()
            await seed(stack.mongodb_uri, stored, size)
            print(f"seeded {size - stored} orders in {time.perf_counter() - started:.1f}s", flush=True)
            stored = max(stored, size)
            await p50(http, url, {"limit": 50}, 2)  # warm up
            first_page = (await http.get(url, params={"limit": 50})).json()
            for shape, params in SHAPES.items():
                if params.get("after") == "NEXT_CURSOR":
                    if "next_cursor" not in first_page:
                        continue  # a version without keyset pagination
                    params = {**params, "after": first_page["next_cursor"] or ""}
                    if not params["after"]:
                        params.pop("after")  # nothing stored: the first page is the only one
                results[shape].append(await p50(http, url, params, samples))
                print(f"  {size:>7} stored  GET /orders?{shape:<32} p50 {results[shape][-1]:8.1f} ms", flush=True)
    print(f"\nGET /orders p50 in ms ({samples} requests each, one at a time):")
    print(f"  {'shape':<34}" + "".join(f"{size:>10}" for size in sizes) + "   ratio last/first")
    for shape, values in results.items():
        if len(values) != len(sizes):
            continue
        ratio = values[-1] / values[0] if values[0] else float("nan")
        print(f"  {shape:<34}" + "".join(f"{v:10.1f}" for v in values) + f"   {ratio:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,5000,20000")
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with embedded_stack("orders-list", ["orders"]) as stack:
        asyncio.run(measure(stack, sizes, args.samples))


if __name__ == "__main__":
    main()
