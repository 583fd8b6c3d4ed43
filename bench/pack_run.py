"""A pack run over many open orders (issue 12's figure), on the embedded store.

Starts the embedded infrastructure only, and seeds `--orders` paid one-line orders straight
through fulfillment's own use cases in this process (routed, each reservation confirmed as
inventory.reserved would, the order known to the pack run as order.paid makes it), with no broker
between (seeding 1,000 through Kafka would measure the seeding). Then it times, through the same
code `POST /pack-runs` calls:

- a run that moves every order to packing (each: its checks, one write to its fulfillment order);
- a run over the same number of orders that all stop at a check (marked waiting): the cost of
  looking alone;
- the run after, with nothing left to do.

    python -m bench.pack_run [--orders 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from bench.harness import ENV, SERVICES
from deploy.local_stack import LocalStack
from services.fulfillment.app import FulfillmentApp, FulfillmentSettings, bootstrap
from services.fulfillment.store import INDEXES
from shared.aggregates import A, Document, StoreMapping
from shared.catalog import InventoryLevel, InventoryReservation, Location, OrderSnapshot, StockLine
from shared.clock import now_iso
from shared.store import AggregateStore


class Commands(monitoring.CommandListener):
    """Counts the store commands sent (each a round trip)."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class DatabaseStores:
    def __init__(self, db: Any) -> None:
        self.db = db

    def store(self, collection: str, *, mapping: StoreMapping[A]) -> AggregateStore[A]:
        return AggregateStore(self.db[collection], lambda *_: None, mapping=mapping)


def an_order(i: int, *, waiting: bool) -> OrderSnapshot:
    return OrderSnapshot.model_validate({
        "id": str(uuid.uuid4()), "customer": {"email": f"buyer+{i}@example.com", "name": "Bench"}, "currency": "SEK",
        "financial_status": "paid", "created_at": now_iso(), "number": 1000 + i, "waiting": waiting,
        "line_items": [{"id": "line-1", "sku": "MUG", "title": "Mug", "quantity": 1, "unit_price": "10"}],
    })  # fmt: skip


async def seed(app: FulfillmentApp, count: int, *, waiting: bool) -> None:
    for i in range(count):
        order = an_order(i, waiting=waiting)
        await app.fulfillment.route_paid_order(order, f"paid-{order.id}")
        await app.pack_runs.order_seen(order, now_iso(), f"paid-{order.id}")
        for fo in await app.fulfillment.fulfillment_orders.find({"order_id": {"$eq": order.id}}):
            lines = [StockLine(sku="MUG", quantity=1)]
            reserved = InventoryReservation(
                order_id=order.id, fulfillment_order_id=fo.id, location_id="wh", lines=lines
            )
            await app.fulfillment.reservation_confirmed(reserved, f"reserved-{fo.id}")


async def timed(app: FulfillmentApp, commands: Commands, what: str) -> None:
    before = commands.count
    started = time.perf_counter()
    report = await app.pack_runs.run("bench")
    seconds = time.perf_counter() - started
    looked = len(report.decisions)
    per_order = f"{seconds / looked * 1000:.2f} ms an order, " if looked else ""
    print(f"{what}: {looked} orders looked at, {report.moved_orders} moved "
          f"({report.moved_fulfillment_orders} fulfillment orders) in {seconds:.2f} s ({per_order}"
          f"{commands.count - before} store commands)", flush=True)  # fmt: skip


@contextlib.contextmanager
def embedded_store() -> Iterator[LocalStack]:
    """The embedded infrastructure alone (no services: this process is fulfillment), in memory."""
    with tempfile.TemporaryDirectory(prefix="bench-pack-run-") as data_dir:
        stack = LocalStack(
            data_dir=Path(data_dir), kafka_port=0, mongo_port=0, smtp_port=0,
            service_ports=dict.fromkeys(SERVICES, 0), persistent_store=False, use_environment=False, extra_env=ENV,
        )  # fmt: skip
        try:
            stack.start_infrastructure()
            yield stack
        finally:
            stack.stop()


async def main(count: int) -> None:
    with embedded_store() as stack:
        commands = Commands()
        client: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongodb_uri, event_listeners=[commands])
        db = client[f"bench_pack_{uuid.uuid4().hex[:8]}"]
        app = bootstrap(DatabaseStores(db), FulfillmentSettings())
        for collection, indexes in INDEXES.items():
            await db[collection].create_indexes(indexes)
        await app.fulfillment.location_updated(Location(id="wh", name="Bench", priority=1), now_iso())
        level = InventoryLevel(sku="MUG", location_id="wh", on_hand=10 * count, reserved=0, available=10 * count)
        await app.fulfillment.stock_level_changed(level, now_iso())
        started = time.perf_counter()
        await seed(app, count, waiting=False)
        print(f"seeded {count} paid, reserved orders in {time.perf_counter() - started:.1f} s", flush=True)
        await timed(app, commands, f"pack run over {count} open orders, all ready")
        await seed(app, count, waiting=True)
        await timed(app, commands, f"pack run over {count} open orders, all marked waiting")
        await timed(app, commands, "the run after (the waiting ones again)")
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    asyncio.run(main(parser.parse_args().orders))
