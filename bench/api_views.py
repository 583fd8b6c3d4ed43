"""What answering in a typed view costs: p50 of the big reads, `GET /fulfillment-orders?limit=250`
(a page of fulfillment orders, each with lines, a hold, a message and a shipment) and inventory's
`GET /stock/{sku}` and `GET /reservations?order_id=`.

    python -m bench.api_views [--samples 60] [--save before.json] [--compare before.json]

Starts the broker, the store, fulfillment and inventory on free ports, seeds 300 fulfillment
orders straight into the store (built by the domain types, dumped by the store mapping, as the
service stores them) and a sku at 20 locations through inventory's API, then times each read one
request at a time. `--save` keeps the figures; `--compare` prints each as a ratio to saved ones
(run once on the code before a change, once after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from bench.harness import embedded_stack  # noqa: E402
from deploy.local_stack import LocalStack  # noqa: E402
from services.fulfillment.domain.fulfillment_orders.model import (  # noqa: E402
    FulfillmentOrder,
    Kind,
    Line,
    RequestMessage,
    Reservation,
    Status,
)
from services.fulfillment.store import FULFILLMENT_ORDERS  # noqa: E402
from shared.catalog import (  # noqa: E402
    Customer,
    FinancialStatus,
    FulfillmentLine,
    FulfillmentSnapshot,
    Hold,
    HoldReason,
    LineItem,
    OrderSnapshot,
    Tracking,
)

STORED = 300
LOCATIONS = 20
AT = "2026-03-01T16:40:00.000000+00:00"


def fulfillment_order(i: int) -> dict[str, Any]:
    """One fulfillment order as the service stores it: two lines, one partly shipped, a hold, a message."""
    order_id = f"order-{i}"
    lines = [LineItem(id=f"{order_id}-{n}", sku=f"SKU-{n}", title="Mug", quantity=3, unit_price=Decimal("10"))
             for n in range(2)]  # fmt: skip
    snapshot = OrderSnapshot(
        id=order_id, customer=Customer(email="ada@example.com", name="Ada"), currency="SEK",
        financial_status=FinancialStatus.PAID, created_at=AT, number=1000 + i, line_items=lines,
    )  # fmt: skip
    shipment = FulfillmentSnapshot(
        id=f"f-{i}", order_id=order_id, fulfillment_order_id=f"fo-{i:04}", location_id="wh-1", status="SUCCESS",
        line_items=[FulfillmentLine(line_item_id=lines[0].id, sku="SKU-0", quantity=1)],
        tracking=Tracking(numbers=[f"00340434161094{i:06}"], company="PostNord"), created_at=AT, updated_at=AT,
    )  # fmt: skip
    fo = FulfillmentOrder(
        id=f"fo-{i:04}", order_id=order_id, kind=Kind.SHIPPING, location_id="wh-1", location_name="Main",
        status=Status.ON_HOLD, line_items=(Line(lines[0].id, "SKU-0", 3, 1), Line(lines[1].id, "SKU-1", 3)),
        holds=(Hold(reason=HoldReason.OTHER, note="count", held_at=AT),),
        messages=(RequestMessage("merchant", "submitted", "gift note, please", AT),),
        fulfillments={shipment.id: shipment}, reservation_status=Reservation.RESERVED, order=snapshot,
        fulfill_by=f"2026-04-{1 + i % 28:02}T17:00:00+00:00", created_at=AT, updated_at=AT,
    )  # fmt: skip
    document = FULFILLMENT_ORDERS.dump(fo)
    return {**document, "_id": fo.id, "version": 1, "inbox": {}, "outbox": {}, "outbox_pending": False}


async def seed(stack: LocalStack, http: httpx.AsyncClient) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
    try:
        await client["fulfillment"]["fulfillment_orders"].insert_many([fulfillment_order(i) for i in range(STORED)])
    finally:
        await client.close()
    inventory = stack.url("inventory")
    for n in range(LOCATIONS):
        reply = await http.put(f"{inventory}/locations/loc-{n}", json={"name": f"Location {n}", "priority": n + 1})
        reply.raise_for_status()
        (await http.put(f"{inventory}/stock/loc-{n}/MUG", json={"on_hand": 10 + n})).raise_for_status()
        (await http.put(f"{inventory}/stock/loc-{n}/MUG/bin", json={"bin": f"A-{n}"})).raise_for_status()


async def p50(http: httpx.AsyncClient, url: str, samples: int) -> float:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        reply = await http.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, reply.text
    return statistics.median(timings)


async def measure(stack: LocalStack, samples: int) -> dict[str, float]:
    reads = {
        "GET /fulfillment-orders?limit=250": stack.url("fulfillment") + "/fulfillment-orders?limit=250",
        "GET /fulfillment-orders/{id}": stack.url("fulfillment") + "/fulfillment-orders/fo-0007",
        f"GET /stock/{{sku}} ({LOCATIONS} locations)": stack.url("inventory") + "/stock/MUG",
        "GET /locations": stack.url("inventory") + "/locations",
    }
    async with httpx.AsyncClient(timeout=120, headers=stack.admin_headers()) as http:
        await seed(stack, http)
        page = (await http.get(reads["GET /fulfillment-orders?limit=250"])).json()
        assert len(page["items"]) == 250, page
        figures = {}
        for name, url in reads.items():
            await p50(http, url, 3)  # warm up
            figures[name] = await p50(http, url, samples)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    with embedded_stack("api-views", ["fulfillment", "inventory"]) as stack:
        figures = asyncio.run(measure(stack, args.samples))
    before: dict[str, float] = json.loads(args.compare.read_text()) if args.compare else {}
    compared = ", and as a ratio to before" if before else ""
    print(f"\np50 in ms ({args.samples} requests each, one at a time){compared}")
    for name, value in figures.items():
        ratio = f"   {value / before[name]:5.2f}x of {before[name]:.1f} ms" if name in before else ""
        print(f"  {name:<40} {value:8.1f}{ratio}")
    if args.save:
        args.save.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
