"""A hot sku as its history grows: the latency of a reservation + commit on one sku at one location
after 0, 10,000 and 50,000 of its units were fulfilled, and its stock document's size at each
point, with ratios to the first; prints figures, asserts nothing.

    python -m bench.hot_sku [--points 0 10000 50000] [--samples 40]

Runs inventory's own code (`Inventory.reserve` then `Inventory.commit`, one unit each, a new
fulfillment order each time) against a fresh embedded store (nx-27017, in memory), with an outbox
relay draining the outboxes meanwhile (publishing to nowhere), as in the service. History is
seeded directly through the store layer, not through Kafka: what the service leaves after each
fulfilment (the stock as the domain rules leave it, one reservation record per fulfillment
order, written in bulk). The issue's figures before this change: the stock document grew by
~192 bytes per unit sold (1.9 MB after 10,000) and a reservation took ~1 s instead of ~0.1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bson
from pymongo import AsyncMongoClient

from deploy.local_stack import LocalStack
from services.inventory.app import COLLECTIONS, bootstrap
from services.inventory.application import Inventory
from services.inventory.domain import reservations
from services.inventory.domain import stock as stock_rules
from services.inventory.domain.reservations import Movement
from services.inventory.domain.stock import Effect, StockLevel
from services.inventory.mapping import RECORDS
from services.inventory.store import INDEXES
from shared.catalog import FulfillmentOrderSnapshot, FulfillmentSnapshot
from shared.events import CloudEvent
from shared.outbox import OUTBOX_PENDING_INDEX, OutboxRelay

NOW = "2026-01-01T00:00:00.000000+00:00"
LOCATION, SKU = "wh-hot", "HOT-1"
ON_HAND = 1_000_000


def new_stack() -> LocalStack:
    """A fresh embedded broker and store (data in memory), no services: inventory runs in here."""
    stack = LocalStack(
        data_dir=Path(tempfile.mkdtemp(prefix="bench-hot-sku-")), kafka_port=0, mongo_port=0, service_ports={},
        persistent_store=False, use_environment=False, extra_env={"SMTP_HOST": "127.0.0.1"},
    )  # fmt: skip
    stack.start_infrastructure()
    return stack


def fulfillment_order(n: int, tag: str) -> FulfillmentOrderSnapshot:
    return FulfillmentOrderSnapshot.model_validate({
        "id": f"fo-{tag}-{n:06d}", "order_id": f"order-{tag}-{n:06d}", "location_id": LOCATION, "status": "OPEN",
        "line_items": [{"line_item_id": "li-1", "sku": SKU, "quantity": 1}], "created_at": NOW, "updated_at": NOW,
    })  # fmt: skip


def fulfillment(of: FulfillmentOrderSnapshot) -> FulfillmentSnapshot:
    return FulfillmentSnapshot.model_validate({
        "id": f"f-{of.id}", "order_id": of.order_id, "fulfillment_order_id": of.id, "location_id": LOCATION,
        "status": "SUCCESS", "line_items": [{"line_item_id": "li-1", "sku": SKU, "quantity": 1}],
        "created_at": NOW, "updated_at": NOW,
    })  # fmt: skip


async def seed(inventory: Inventory, first: int, last: int) -> None:
    """Units first..last-1 fulfilled, as the service leaves them: each fulfillment order's record
    (with what its fulfillment took), and the stock after all of them (in one write)."""
    level = await inventory.stock.level(LOCATION, SKU)
    batch: list[dict[str, Any]] = []
    for n in range(first, last):
        fo = fulfillment_order(n, "seed")
        level = stock_rules.commit(level, {}, f"f-{fo.id}", fo.id, 1).level
        movement = Movement("committed", LOCATION, {SKU: 1})
        change = reservations.record_movements(None, f"seed-{n}", fo.order_id, fo.id, [level], [movement], NOW)
        assert change is not None
        level, _ = stock_rules.settle(level, fo.id, {})
        bookkeeping = {"version": 1, "inbox": {}, "outbox": {}, "outbox_pending": False}
        batch.append({"_id": fo.id, **RECORDS.dump(change.document), **bookkeeping})
        if len(batch) == 1_000:
            await inventory.reservations.records.collection.insert_many(batch)
            batch = []
    if batch:
        await inventory.reservations.records.collection.insert_many(batch)
    seeded = level

    def to_seeded(current: StockLevel) -> Effect:
        return Effect(replace(seeded, seq=current.seq))

    await inventory.stock.change(LOCATION, SKU, to_seeded, {"kind": "seed"})


async def measure(inventory: Inventory, samples: int, tag: str) -> tuple[float, float, float]:
    """p50 of a reservation, of a commit, and of the two, in ms."""
    reserving, committing, both = [], [], []
    for n in range(samples):
        fo = fulfillment_order(n, tag)
        began = time.perf_counter()
        await inventory.reserve(f"reserve-{fo.id}", fo)
        reserved = time.perf_counter()
        await inventory.commit(f"commit-{fo.id}", fulfillment(fo))
        done = time.perf_counter()
        reserving.append(reserved - began)
        committing.append(done - reserved)
        both.append(done - began)
    return statistics.median(reserving) * 1000, statistics.median(committing) * 1000, statistics.median(both) * 1000


async def stock_size(inventory: Inventory) -> int:
    """The stock document's size, without its outbox (events on their way out, not history)."""
    doc = await inventory.stock.collection.find_one({"_id": f"{LOCATION}/{SKU}"}, {"outbox": 0})
    return len(bson.encode(doc or {}))


async def publish_nowhere(_: CloudEvent) -> None:
    return None


def nothing(*_: object) -> None:
    return None


async def run(points: list[int], samples: int) -> None:
    stack = new_stack()
    client: AsyncMongoClient[Any] = AsyncMongoClient(stack.mongodb_uri)
    try:
        db = client["bench_hot_sku"]
        # The indexes the service creates at start: its own, and the relay's on every collection it watches.
        for collection, models in INDEXES.items():
            await db[collection].create_indexes(models)
        for collection in COLLECTIONS:
            await db[collection].create_indexes([OUTBOX_PENDING_INDEX])
        relay = OutboxRelay([db[name] for name in COLLECTIONS], publish_nowhere, poll_seconds=0.2)
        inventory = bootstrap(db, relay.wake)
        await inventory.locations.put(LOCATION, "Hot warehouse", 1, True, None)
        await inventory.set_on_hand(LOCATION, SKU, ON_HAND)
        relay.start()
        print(f"hot sku: reservation + commit of one unit, p50 of {samples}; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cpu(s)")  # fmt: skip
        print(f"   {'fulfilled':>10} {'stock bytes':>12} {'reserve ms':>11} {'commit ms':>10} {'both ms':>8} "
              f"{'x size':>7} {'x both':>7}")  # fmt: skip
        seeded, first = 0, (0, 0.0)
        for run_number, point in enumerate(sorted(points)):
            started = time.perf_counter()
            await seed(inventory, seeded, point)
            seeded = point
            seeding = time.perf_counter() - started
            await asyncio.sleep(0.5)  # the relay drains what seeding and the last run left
            reserve_ms, commit_ms, both_ms = await measure(inventory, samples, f"run{run_number}")
            seeded += samples  # the measured ones were fulfilled too
            size = await stock_size(inventory)
            first = first if first[0] else (size, both_ms)
            print(f"   {point:>10,} {size:>12,} {reserve_ms:>11.1f} {commit_ms:>10.1f} {both_ms:>8.1f} "
                  f"{size / first[0]:>6.2f}x {both_ms / first[1]:>6.2f}x   (seeded in {seeding:.1f} s)")  # fmt: skip
        await relay.stop()
    finally:
        await client.close()
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, nargs="+", default=[0, 10_000, 50_000])
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    logging.getLogger("shared.outbox").setLevel(logging.ERROR)
    asyncio.run(run(args.points, args.samples))


if __name__ == "__main__":
    main()
