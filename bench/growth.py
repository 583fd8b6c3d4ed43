"""Does an order cost the same with 50,000 stored as with none? Latencies as the data grows.

    python -m bench.growth [--sizes 500,10000,50000] [--hot-units 10000,50000] [--samples 20]
                           [--budget 15]

Starts its own embedded stack, a location with stock and the shop on automatic fulfilment, then
for each size N (stored orders):

1. seeds the stores up to N orders, directly (through Kafka it would take hours): real orders
   placed earlier in the run (fulfilled with their email sent, pending, cancelled) are read
   back from every service's store, every document that belongs to one of them (the order,
   its routing and fulfillment orders, its reservation, its notifications, whatever else the
   services keep per order) is copied with fresh ids (every UUID in it, consistently across
   the services), its times moved back by up to 90 days (RFC 3339 strings, dates and epoch
   numbers alike), its sku one of 1,000; 80% are fulfilled, 10% pending, 10% cancelled.
   Copying what the services wrote keeps the documents the shape the code under test writes;
2. measures p50/p95 over `--samples` (fewer, but at least 3, once an operation has taken
   `--budget` seconds at that size) of: create + pay an order of a stocked sku -> the order
   FULFILLED (one order at a time; the moments are when the platform's events are seen on
   Kafka: pay -> fulfillment order created, pay -> stock reserved, pay -> the fulfillment
   order RESERVED and fulfilled); `GET /orders?limit=50` with each sort and with a status
   filter; `GET /fulfillment-orders?order_id=` of a random stored order; and the idle store's
   CPU (the nx-27017 process's CPU seconds over 10 s of nothing happening, from
   /proc/<pid>/stat) and memory.

Then a hot sku, with the largest N stored: pay -> reserved and create + pay -> FULFILLED of
orders of one sku after 0 and then `--hot-units` of its units were fulfilled (that history is
seeded the same way into inventory's store: the reservations and whatever inventory keeps per
fulfilment, and the entries the sku's stock document keeps per fulfilment, if it keeps any),
and the size of that stock document (`bson.encode` of it as stored).

The first size is 500, not 0: with fewer than 50 orders of a status, `GET /orders?limit=50` with
that status filter returns a short page, cheaper for that reason alone, and a ratio to it would
measure the page length, not the growth (each listing's page length is printed beside it);
500 holds a full page of every filter (10% pending, 10% cancelled) and is none at all for the
other operations.

Prints each operation at each size and its ratio to the first size. Figures only; the machine's
other load moves them, so compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import bson
import httpx
from pymongo import AsyncMongoClient

from bench.harness import (
    EventWatch,
    cpu_seconds,
    embedded_stack,
    order_body,
    p50,
    p95,
    prepare_shop,
    rss_mb,
    store_pid,
)
from bench.seeding import Copier, Document, Seeder, Template, merge_entries, mix, read_templates, wait_settled
from deploy.local_stack import LocalStack

FULFILLED = "order.fulfillment_status_changed:FULFILLED"
WAIT_S = 180.0  # longest wait for one event of one order
HISTORY_SKUS = 1_000  # seeded orders spread over this many skus
ORDER_LISTS: dict[str, dict[str, str | int]] = {
    "GET /orders?limit=50": {"limit": 50},
    "GET /orders?limit=50&sort=created_at": {"limit": 50, "sort": "created_at"},
    "GET /orders?limit=50&sort=-created_at": {"limit": 50, "sort": "-created_at"},
    "GET /orders?limit=50&financial_status=pending": {"limit": 50, "financial_status": "pending"},
    "GET /orders?limit=50&fulfillment_status=FULFILLED": {"limit": 50, "fulfillment_status": "FULFILLED"},
}
FO_BY_ORDER = "GET /fulfillment-orders?order_id="
E2E = "create + pay -> order FULFILLED"
TO_FO = "  pay -> fulfillment order created"
TO_RESERVED = "  pay -> stock reserved (inventory)"
TO_FO_RESERVED = "  pay -> fulfillment order RESERVED, fulfilled"
IDLE = "idle store CPU, % of a core"


@dataclass
class Run:
    """One benchmark run's stack, clients and what it has stored so far."""

    stack: LocalStack
    http: httpx.AsyncClient
    mongo: AsyncMongoClient[Document]
    watch: EventWatch
    samples: int
    budget: float
    location: str
    sku: str
    order_ids: list[str] = field(default_factory=list)
    placed: int = 0

    async def place(self, sku: str, *, pay: bool = True) -> tuple[str, float, float]:
        """An order of `sku`, paid unless told not to: (order id, when placing began, when paying began)."""
        self.placed += 1
        started = time.perf_counter()
        reply = await self.http.post(f"{self.stack.url('orders')}/orders", json=order_body(sku, self.placed))
        reply.raise_for_status()
        order_id: str = reply.json()["id"]
        paying = time.perf_counter()
        if pay:
            (await self.http.post(f"{self.stack.url('orders')}/orders/{order_id}/pay")).raise_for_status()
        self.order_ids.append(order_id)
        return order_id, started, paying

    async def flows(self, sku: str, results: dict[str, list[float]], e2e: str = E2E) -> list[str]:
        """Orders of `sku` one at a time (each until its shipping email is sent, so that they do
        not overlap): create + pay -> FULFILLED, and from pay: the fulfillment order created, the
        stock reserved (inventory.reserved), the fulfillment order RESERVED (with automatic
        fulfilment that same write fulfils it: fulfillment.created)."""
        deadline = time.perf_counter() + self.budget
        placed = []
        for n in range(self.samples):
            if n >= 3 and time.perf_counter() > deadline:
                break
            order_id, started, paying = await self.place(sku)
            placed.append(order_id)
            fo = await self.watch.wait(order_id, "fulfillment_order.created", WAIT_S)
            reserved = await self.watch.wait(order_id, "inventory.reserved", WAIT_S)
            # automatic fulfilment: the write that marks the fulfillment order RESERVED fulfils it
            fo_reserved = await self.watch.wait(order_id, "fulfillment.created", WAIT_S)
            fulfilled = await self.watch.wait(order_id, FULFILLED, WAIT_S)
            await self.watch.wait(order_id, "notification.sent", WAIT_S)
            results.setdefault(e2e, []).append((fulfilled - started) * 1000)
            results.setdefault(TO_FO, []).append((fo - paying) * 1000)
            results.setdefault(TO_RESERVED, []).append((reserved - paying) * 1000)
            results.setdefault(TO_FO_RESERVED, []).append((fo_reserved - paying) * 1000)
        return placed

    async def timed(self, name: str, results: dict[str, list[float]], call: Callable[[], Awaitable[Any]]) -> None:
        deadline = time.perf_counter() + self.budget
        for n in range(self.samples):
            if n >= 3 and time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            reply = await call()
            elapsed = (time.perf_counter() - started) * 1000
            reply.raise_for_status()
            results.setdefault(name, []).append(elapsed)

    async def measure(self, size: int) -> dict[str, list[float]]:
        results: dict[str, list[float]] = {}
        began = time.perf_counter()
        await self.flows(self.sku, results)
        orders_url = f"{self.stack.url('orders')}/orders"
        for name, params in ORDER_LISTS.items():
            await self.timed(name, results, functools.partial(self.http.get, orders_url, params=params))
            page = await self.http.get(orders_url, params=params)
            results[f"  (orders on the page of {name.removeprefix('GET /orders?')})"] = [len(page.json()["items"])]
        rng = random.Random(size)
        fo_url = f"{self.stack.url('fulfillment')}/fulfillment-orders"
        await self.timed(
            FO_BY_ORDER, results, lambda: self.http.get(fo_url, params={"order_id": rng.choice(self.order_ids)})
        )
        await asyncio.sleep(2)  # the last relays and commits
        pid = store_pid(self.stack)
        before = cpu_seconds(pid)
        await asyncio.sleep(10)
        results[IDLE] = [(cpu_seconds(pid) - before) / 10 * 100]
        results["store RSS, MB"] = [rss_mb(pid)]
        print(f"  measured at {size:,} in {time.perf_counter() - began:.0f}s", flush=True)
        return results


async def stock_sizes(mongo: AsyncMongoClient[Document], docs: list[tuple[str, str, Any]]) -> int:
    sizes = []
    for database, collection, doc_id in docs:
        doc = await mongo[database][collection].find_one({"_id": doc_id})
        if doc is not None:
            sizes.append(len(bson.encode(doc)))
    return max(sizes, default=0)


async def benchmark(stack: LocalStack, sizes: list[int], hot_units: list[int], samples: int, budget: float) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    location, sku, template_sku, hot_sku = f"wh-{tag}", f"MUG-{tag}", f"TPL-{tag}", f"HOT-{tag}"
    stock = {sku: 10_000_000, template_sku: 10_000_000, hot_sku: 10_000_000}
    growth: dict[int, dict[str, list[float]]] = {}
    hot: dict[int, dict[str, list[float]]] = {}
    hot_size: dict[int, int] = {}
    async with (
        httpx.AsyncClient(timeout=600, headers=stack.admin_headers(6 * 3600)) as http,
        AsyncMongoClient[Document](stack.mongodb_uri) as mongo,
        EventWatch(stack.kafka_bootstrap) as watch,
    ):
        await prepare_shop(http, stack, location, stock)
        run = Run(stack, http, mongo, watch, samples, budget, location, sku)
        copier = Copier(time.time() - 2 * 86_400, time.time() + 400 * 86_400)
        seeder = Seeder(mongo, copier, random.Random(7))
        templates: list[Template] = []
        hot_templates: list[Template] = []
        hot_docs: list[tuple[str, str, Any]] = []
        stored = 0
        for size in sizes:
            if size > stored:
                if not templates:
                    templates, hot_templates, hot_docs = await make_templates(run, template_sku, hot_sku)
                started = time.perf_counter()
                total = stored

                def history_sku(i: int, base: int = total) -> dict[str, str]:
                    return {sku: f"HIST-{(base + i) % HISTORY_SKUS:04d}"}

                _, copied = await seeder.seed(mix(templates), size - stored, history_sku)
                run.order_ids.extend(copied)
                print(f"seeded {size - stored:,} orders in {time.perf_counter() - started:.0f}s", flush=True)
                stored = size
            growth[size] = await run.measure(size)
        if hot_units:
            print(f"hot sku, with {stored:,} orders stored:", flush=True)
            if not hot_templates:
                templates, hot_templates, hot_docs = await make_templates(run, template_sku, hot_sku)
            units = 0
            for target in [0, *hot_units]:
                if target > units:
                    started = time.perf_counter()
                    entries, _ = await seeder.seed(
                        lambda i: hot_templates[i % len(hot_templates)], target - units,
                        lambda _: {template_sku: hot_sku}, frozenset({"inventory"}), with_entries=True,
                    )  # fmt: skip
                    await merge_entries(mongo, entries)
                    if not entries:
                        print("  (no shared document keeps entries per fulfilment: only inventory's per-order "
                              "documents were seeded)", flush=True)  # fmt: skip
                    print(f"  seeded {target - units:,} fulfilled units in {time.perf_counter() - started:.0f}s",
                          flush=True)  # fmt: skip
                    units = target
                results: dict[str, list[float]] = {}
                placed = await run.flows(hot_sku, results, e2e="create + pay -> order FULFILLED (hot sku)")
                units += len(placed)
                hot[target] = results
                hot_size[target] = await stock_sizes(mongo, hot_docs)
    report(growth, hot, hot_size)


async def make_templates(
    run: Run, template_sku: str, hot_sku: str
) -> tuple[list[Template], list[Template], list[tuple[str, str, Any]]]:
    """Real orders to copy: the ones measured so far (fulfilled), two pending, two cancelled
    (with the buyer told), and three fulfilled of the template sku (the hot sku's history)."""
    kinds = dict.fromkeys(run.order_ids, "fulfilled")
    orders_url = f"{run.stack.url('orders')}/orders"
    waits = []
    for _ in range(2):
        order_id, _, _ = await run.place(run.sku, pay=False)
        kinds[order_id] = "pending"
    for _ in range(2):
        order_id, _, _ = await run.place(run.sku, pay=False)
        cancel = {"refund": "none", "restock": False, "notify_customer": True, "reason": "customer"}
        (await run.http.post(f"{orders_url}/{order_id}/cancel", json=cancel)).raise_for_status()
        kinds[order_id] = "cancelled"
        waits.append(run.watch.wait(order_id, "notification.sent", 30))
    hot_kinds = {}
    for _ in range(3):
        order_id, _, _ = await run.place(template_sku)
        hot_kinds[order_id] = "fulfilled"
        waits.append(run.watch.wait(order_id, "notification.sent", WAIT_S))
    if len(kinds) == 4:  # nothing measured yet: fulfilled ones to copy too
        for _ in range(3):
            order_id, _, _ = await run.place(run.sku)
            kinds[order_id] = "fulfilled"
            waits.append(run.watch.wait(order_id, "notification.sent", WAIT_S))
    for outcome in await asyncio.gather(*waits, return_exceptions=True):
        if isinstance(outcome, BaseException):
            print(f"  (a template order did not get its email: {outcome!r}; copying it as it is)", flush=True)
    await asyncio.sleep(1)  # the events that follow the email (the timeline's)
    await wait_settled(run.mongo)
    templates, _ = await read_templates(run.mongo, kinds)
    hot_templates, shared = await read_templates(run.mongo, hot_kinds, shared_with=hot_sku)
    hot_docs = [(database, collection, doc_id) for database, collection, doc_id in shared if database == "inventory"]
    for template in hot_templates:  # the stock document of the template sku lends its entries to the hot sku's
        template.entries = [
            (database, collection, doc_id.replace(template_sku, hot_sku) if isinstance(doc_id, str) else doc_id,
             map_field, text)
            for database, collection, doc_id, map_field, text in template.entries
        ]  # fmt: skip
    per_db: dict[str, int] = defaultdict(int)
    for template in templates:
        for database, collection, _ in template.docs:
            per_db[f"{database}.{collection}"] += 1
    print("copying the documents of", ", ".join(f"{n} {k}" for k, n in sorted(per_db.items())),
          f"({len(templates)} orders)", flush=True)  # fmt: skip
    return templates, hot_templates, hot_docs


def report(
    growth: dict[int, dict[str, list[float]]], hot: dict[int, dict[str, list[float]]], hot_size: dict[int, int]
) -> None:
    if growth:
        sizes = list(growth)
        base = sizes[0]
        print(f"\nms (p50 / p95, n samples; x = p50 / p50 at {base:,} stored orders)")
        header = "".join(f"{f'{size:,} orders':>30}" for size in sizes)
        print(f"{'':<48}{header}")
        names = list(dict.fromkeys(name for results in growth.values() for name in results))
        for name in names:
            cells = []
            for size in sizes:
                samples = growth[size].get(name, [])
                first = growth[base].get(name, [])
                ratio = p50(samples) / p50(first) if samples and first and p50(first) else float("nan")
                if len(samples) == 1:
                    cells.append(f"{samples[0]:>16.1f}  x{ratio:<5.2f}     ")
                else:
                    cells.append(f"{p50(samples):>8.0f} /{p95(samples):>6.0f} n={len(samples):<3} x{ratio:<5.2f}")
            print(f"{name:<48}" + "".join(f"{c:>30}" for c in cells))
    if hot:
        base_units = next(iter(hot))
        print("\nhot sku: one sku at one location, after N of its units were fulfilled (ms, p50 / p95)")
        columns = ("units fulfilled", 16), ("pay -> reserved", 24), ("create+pay -> FULFILLED", 28), ("x", 7)
        print("".join(f"{name:>{width}}" for name, width in columns) + f"{'stock doc bytes':>18}")
        for units, results in hot.items():
            e2e = next(v for k, v in results.items() if k.startswith(E2E))
            first = next(v for k, v in hot[base_units].items() if k.startswith(E2E))
            reserved = results.get(TO_RESERVED, [])
            print(f"{units:>16,}{p50(reserved):>14.0f} /{p95(reserved):>7.0f}{p50(e2e):>18.0f} /{p95(e2e):>7.0f}"
                  f"{p50(e2e) / p50(first):>7.2f}{hot_size.get(units, 0):>18,}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,10000,50000", help="stored orders to measure at, ascending")
    parser.add_argument(
        "--hot-units", default="10000,50000", help="hot sku units fulfilled to measure after ('' for none)"
    )
    parser.add_argument("--samples", type=int, default=20, help="samples per operation")
    parser.add_argument("--budget", type=float, default=15, help="seconds per operation and size (at least 3 samples)")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    hot_units = sorted({int(s) for s in args.hot_units.split(",") if s.strip()})
    with embedded_stack("growth") as stack:
        asyncio.run(benchmark(stack, sizes, hot_units, args.samples, args.budget))


if __name__ == "__main__":
    main()
