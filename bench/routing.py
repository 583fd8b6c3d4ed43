"""Routing figures: how long routing takes, and how long a paid order waits for its fulfillment order.

    python -m bench.routing            # both
    python -m bench.routing --pure     # routing time only (no stack)

1. Routing time for 100 lines over 50 locations (the pure rule, no I/O), in three shapes:
   one location can ship everything; a split is needed; a split large enough that the search
   for the fewest locations runs out of budget and settles for the greedy cover.
2. Paid-to-fulfillment-order-created latency on the embedded stack (embedded Kafka, embedded
   MongoDB, the four services as processes): the time between the order.paid event and the
   fulfillment_order.created event (their CloudEvents `time`: through orders' outbox, Kafka,
   fulfillment's consumer and routing), and the time a client waits from `POST /orders`
   (paid) until `GET /fulfillment-orders?order_id=` lists the fulfillment order.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from deploy.local_stack import LocalStack  # noqa: E402
from services.fulfillment.domain.routing import LineNeed, RoutingLocation, route  # noqa: E402
from tests.kafka_tools import TopicReader  # noqa: E402

LOCATIONS = 50
LINES = 100


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"p50 {statistics.median(ordered):8.2f} ms   p95 {p95:8.2f} ms   max {ordered[-1]:8.2f} ms   (n={len(ordered)})"
    )


def routing_shapes(
    seed: int = 1,
) -> dict[str, tuple[list[LineNeed], list[RoutingLocation], dict[tuple[str, str], int]]]:
    rng = random.Random(seed)
    locations = [RoutingLocation(f"L{i:02}", f"location {i}", priority=i + 1) for i in range(LOCATIONS)]
    skus = [f"SKU-{i:03}" for i in range(LINES)]
    lines = [LineNeed(f"line-{i}", sku, rng.randint(1, 3)) for i, sku in enumerate(skus)]

    # One location (the 37th by priority) has everything; the others have a bit of everything.
    single = {(loc.id, sku): rng.randint(0, 2) for loc in locations for sku in skus}
    single.update({("L36", sku): 5 for sku in skus})

    # Five regional warehouses each hold a fifth of the catalogue: a split over five is needed.
    split = {(loc.id, sku): 0 for loc in locations for sku in skus}
    for index, sku in enumerate(skus):
        split[(f"L{10 * (index % 5) + 3:02}", sku)] = 4
        odd = (f"L{rng.randrange(LOCATIONS):02}", sku)
        split[odd] = split[odd] or 1  # scattered odd units

    # Sparse stock everywhere: the fewest-locations search exhausts its budget.
    sparse = {(loc.id, sku): rng.choice([0, 0, 0, 0, 1, 3]) for loc in locations for sku in skus}
    return {
        "one location ships all": (lines, locations, single),
        "split needed (5 of 50)": (lines, locations, split),
        "sparse stock (greedy fallback)": (lines, locations, sparse),
    }


def bench_pure(runs: int) -> None:
    print(f"Routing time, {LINES} lines over {LOCATIONS} locations (pure rule, this machine):")
    for name, (lines, locations, stock) in routing_shapes().items():
        samples = []
        plan = route(lines, locations, stock)
        for _ in range(runs):
            started = time.perf_counter()
            route(lines, locations, stock)
            samples.append((time.perf_counter() - started) * 1000)
        print(f"  {name:<32} {percentiles(samples)}   -> {len(plan.allocations)} fulfillment order(s)"
              f"{', some out of stock' if plan.unfulfillable else ''}")  # fmt: skip


async def bench_stack(orders: int, concurrency: int) -> None:
    env = {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500", "OUTBOX_POLL_SECONDS": "0.2",
           "HANDLER_BACKOFF_SECONDS": "0.05", "LOG_LEVEL": "WARNING"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-routing-") as data_dir:
        stack = LocalStack(
            data_dir=Path(data_dir), kafka_port=0, mongo_port=0,
            service_ports=dict.fromkeys(("orders", "inventory", "fulfillment", "notifications"), 0),
            persistent_store=False, use_environment=False, extra_env=env,
        )  # fmt: skip
        try:
            stack.start_infrastructure()
            stack.start_services()
            stack.wait_until_ready(120)
            await _measure(stack, orders, concurrency)
        finally:
            stack.stop()


async def _measure(s: LocalStack, orders: int, concurrency: int) -> None:
    tag = uuid.uuid4().hex[:6]
    sku, location = f"BENCH-{tag}", f"bench-{tag}"
    async with httpx.AsyncClient(timeout=30, headers=s.admin_headers()) as http:
        await http.put(f"{s.url('inventory')}/locations/{location}", json={"name": "bench", "active": True})
        await http.put(f"{s.url('inventory')}/stock/{location}/{sku}", json={"on_hand": orders * 2})
        while True:  # until routing sees the stock
            view = (await http.get(f"{s.url('fulfillment')}/routing/stock/{sku}")).json()
            if any(loc["location_id"] == location and loc["available"] == orders * 2 for loc in view["locations"]):
                break
            await asyncio.sleep(0.2)
        body = {
            "customer": {"email": "bench@example.com", "name": "Bench"}, "currency": "SEK", "financial_status": "paid",
            "shipping_address": {"address1": "x", "city": "y", "country_code": "SE"},
            "line_items": [{"sku": sku, "title": "Bench", "quantity": 1, "unit_price": "1.00"}],
        }  # fmt: skip
        async with TopicReader(s.kafka_bootstrap, "orders.events.v1", "fulfillment.events.v1") as kafka:
            sent: dict[str, float] = {}
            seen: dict[str, float] = {}
            semaphore = asyncio.Semaphore(concurrency)

            async def place() -> None:
                """Closed loop: at most `concurrency` orders wait for their fulfillment order,
                which the client sees as soon as `GET /fulfillment-orders` lists it."""
                async with semaphore:
                    started = time.monotonic()
                    reply = await http.post(f"{s.url('orders')}/orders", json=body)
                    order_id = reply.json()["id"]
                    sent[order_id] = started
                    listing = f"{s.url('fulfillment')}/fulfillment-orders"
                    while not (await http.get(listing, params={"order_id": order_id})).json()["items"]:
                        await asyncio.sleep(0.005)
                    seen[order_id] = time.monotonic()

            wall = time.monotonic()
            await asyncio.gather(*(place() for _ in range(orders)))
            wall = time.monotonic() - wall
            metrics = (await http.get(f"{s.url('fulfillment')}/metrics")).text
            handler_ms = _mean_ms(metrics, "faststream_received_processed_messages_duration_seconds")
            for order_id in sent:  # the events of every order, to read their times
                while "fulfillment_order.created" not in kafka.types(order_id):
                    await asyncio.sleep(0.05)

            in_service, client = [], []
            for order_id, started in sent.items():
                paid = next(e for e in kafka.events(order_id, "orders.events.v1") if e["type"] == "order.paid")
                created = next(e for e in kafka.events(order_id, "fulfillment.events.v1")
                               if e["type"] == "fulfillment_order.created")  # fmt: skip
                in_service.append((_at(created["time"]) - _at(paid["time"])).total_seconds() * 1000)
                client.append((seen[order_id] - started) * 1000)
    print(f"Paid-to-fulfillment-order-created on the embedded stack, {orders} orders, {concurrency} at a time:")
    print(f"  order.paid -> fulfillment_order.created (event times)   {percentiles(in_service)}")
    print(f"  POST /orders -> listed by GET /fulfillment-orders      {percentiles(client)}")
    print(f"  throughput: {orders / wall:.1f} orders/s routed end to end")
    print(f"  fulfillment handler time per message (all types): {handler_ms:.1f} ms on average")


def _mean_ms(metrics: str, histogram: str) -> float:
    """Mean of a Prometheus histogram over all its label sets, in milliseconds."""
    total = count = 0.0
    for line in metrics.splitlines():
        if line.startswith(f"{histogram}_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{histogram}_count"):
            count += float(line.rsplit(" ", 1)[1])
    return 1000 * total / count if count else float("nan")


def _at(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pure", action="store_true", help="only the routing rule, no stack")
    parser.add_argument("--runs", type=int, default=200, help="routing runs per shape")
    parser.add_argument("--orders", type=int, default=100, help="paid orders sent through the stack")
    parser.add_argument("--concurrency", type=int, default=1, help="orders waiting for routing at once (closed loop)")
    args = parser.parse_args()
    bench_pure(args.runs)
    if not args.pure:
        print()
        asyncio.run(bench_stack(args.orders, args.concurrency))


if __name__ == "__main__":
    main()
