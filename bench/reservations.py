"""Reservation throughput against the embedded store and broker; prints figures, asserts nothing.

    python -m bench.reservations [--requests 400] [--concurrency 1 8 32] [--replicas 1 2]
                                 [--only in-process|service]

Two measurements, each on a fresh local stack (embedded Kafka + nx-27017, data in memory):

1. in-process: the reservation flow (`Inventory.reserve`: record read, location read, one
   conditional stock write per line, record write with its events) called directly, with C
   requests in flight at once; spread over many skus, and all on one hot sku (contention).
   An outbox relay drains the outboxes meanwhile (publishing to nowhere), as in the service.
2. service: fulfillment_order.created events produced to Kafka and answered by 1..N inventory
   replicas in one consumer group; time from the first event produced to the last answer
   (inventory.reserved) read back from Kafka.

Every request asks for one unit of one sku at one location, and there is stock for all of
them, so every answer is inventory.reserved. Figures depend on the machine: the embedded store
is one Python process (SQLite behind a wire-protocol server) that serialises every operation,
and replicas share this machine's cores; "store cpu" is the share of one core the store used
during the run (near 100% means the store is the bottleneck, not inventory).
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
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from deploy.local_stack import Child, LocalStack, free_port, is_ready
from services.inventory.app import COLLECTIONS, bootstrap
from services.inventory.application import Inventory
from shared.catalog import FulfillmentOrderChanged, FulfillmentOrderSnapshot
from shared.events import CloudEvent, new_event
from shared.outbox import OutboxRelay
from tests.kafka_tools import TopicReader

NOW = "2026-01-01T00:00:00.000000+00:00"
# SMTP_HOST set: inventory sends no email, so the stack starts no local SMTP sink.
ENV = {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500", "OUTBOX_POLL_SECONDS": "0.2",
       "LOG_LEVEL": "WARNING", "SMTP_HOST": "127.0.0.1"}  # fmt: skip


def snapshot(order_id: str, location_id: str | None, sku: str) -> FulfillmentOrderSnapshot:
    return FulfillmentOrderSnapshot.model_validate({
        "id": f"fo-{order_id}", "order_id": order_id, "location_id": location_id, "status": "OPEN",
        "line_items": [{"line_item_id": "li-1", "sku": sku, "quantity": 1}], "created_at": NOW, "updated_at": NOW,
    })  # fmt: skip


def request(order_id: str, location_id: str | None, sku: str) -> CloudEvent:
    changed = FulfillmentOrderChanged(fulfillment_order=snapshot(order_id, location_id, sku))
    return new_event("bench", "fulfillment_order.created", order_id, changed)


def new_stack(name: str, inventory: bool) -> LocalStack:
    stack = LocalStack(
        data_dir=Path(tempfile.mkdtemp(prefix=f"bench-{name}-")), kafka_port=0, mongo_port=0,
        service_ports={"inventory": 0} if inventory else {}, persistent_store=False, use_environment=False,
        extra_env=ENV,
    )  # fmt: skip
    stack.start_infrastructure()
    if inventory:
        stack.start_services()
        stack.wait_until_ready(90)
    return stack


# --- 1. in-process ---------------------------------------------------------------------------


async def in_process(requests: int, concurrency_levels: list[int]) -> None:
    stack = new_stack("inprocess", inventory=False)
    client: AsyncMongoClient[Any] = AsyncMongoClient(stack.mongodb_uri)
    store = _child(stack, "mongo")
    try:
        print(f"\n1. in-process reservation flow against nx-27017 ({requests} requests per run)")
        print(
            f"   {'skus':>6} {'in flight':>10} {'relay':>6} {'res/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'store cpu':>10}"
        )
        for relaying in (False, True):
            for skus in (50, 1):
                for concurrency in concurrency_levels:
                    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
                    # With the relay, outboxes are drained as in the service (publishing to nowhere).
                    relay = OutboxRelay([db[name] for name in COLLECTIONS], _publish_nowhere, poll_seconds=0.2)
                    wake = relay.wake if relaying else _nothing
                    inventory = bootstrap(db, wake)
                    await inventory.locations.put("wh-1", "Warehouse", 1, True, None)
                    for n in range(skus):
                        await inventory.set_on_hand("wh-1", f"SKU-{n}", requests)
                    if relaying:
                        relay.start()
                    cpu_before, wall_before = _cpu_seconds(store), time.perf_counter()
                    rate, p50, p95 = await _run_in_process(inventory, requests, concurrency, skus)
                    store_share = (_cpu_seconds(store) - cpu_before) / (time.perf_counter() - wall_before)
                    reserved = sum([(await inventory.stock.level("wh-1", f"SKU-{n}")).reserved for n in range(skus)])
                    assert reserved == requests, f"expected {requests} units reserved, found {reserved}"
                    print(f"   {skus:>6} {concurrency:>10} {'on' if relaying else 'off':>6} {rate:>8.0f} {p50:>8.1f} "
                          f"{p95:>8.1f} {store_share:>9.0%}")  # fmt: skip
                    if relaying:
                        await relay.stop()
                    await client.drop_database(db.name)
    finally:
        await client.close()
        stack.stop()


def _nothing(*_: object) -> None:
    return None


def _child(stack: LocalStack, name: str) -> int:
    return next(child.process.pid for child in stack.children if child.name == name)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _publish_nowhere(_: CloudEvent) -> None:
    return None


async def _run_in_process(
    inventory: Inventory, requests: int, concurrency: int, skus: int
) -> tuple[float, float, float]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            began = time.perf_counter()
            await inventory.reserve(f"event-{n}", snapshot(f"order-{n}", "wh-1", f"SKU-{n % skus}"))
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=20)
    return requests / elapsed, quantiles[9] * 1000, quantiles[18] * 1000


# --- 2. the service over Kafka ---------------------------------------------------------------


async def service(requests: int, replica_counts: list[int]) -> None:
    print(f"\n2. inventory service over Kafka ({requests} fulfillment_order.created per run, 50 skus)")
    print(f"   {'replicas':>8} {'res/s':>8} {'seconds':>8} {'store cpu':>10} {'replicas cpu':>13}")
    for replicas in replica_counts:
        stack = new_stack(f"service{replicas}", inventory=True)
        extra: list[Child] = []
        try:
            async with httpx.AsyncClient(timeout=10, headers=stack.admin_headers()) as http:
                urls = [stack.url("inventory")]
                for _ in range(replicas - 1):
                    port = free_port()
                    env = stack.service_env("inventory", port)
                    extra.append(stack._spawn(f"inventory-{port}", [sys.executable, "-m", "services.inventory"], env))
                    urls.append(f"http://127.0.0.1:{port}")
                await _until(lambda urls=urls: all(is_ready(url + "/readyz") for url in urls), 90)
                await _until_all_consume(stack, http, urls)
                pids = [_child(stack, "inventory")] + [child.process.pid for child in extra]
                store = _child(stack, "mongo")
                store_before, replicas_before = _cpu_seconds(store), sum(_cpu_seconds(pid) for pid in pids)
                rate, elapsed = await _run_service(stack, http, requests)
                store_share = (_cpu_seconds(store) - store_before) / elapsed
                replicas_share = (sum(_cpu_seconds(pid) for pid in pids) - replicas_before) / elapsed
                print(f"   {replicas:>8} {rate:>8.0f} {elapsed:>8.1f} {store_share:>9.0%} {replicas_share:>12.0%}")
        finally:
            for child in extra:
                stack.stop_child(child)
            stack.stop()


async def _run_service(stack: LocalStack, http: httpx.AsyncClient, requests: int) -> tuple[float, float]:
    url = stack.url("inventory")
    await http.put(f"{url}/locations/wh-1", json={"name": "Warehouse", "priority": 1})
    for n in range(50):
        await http.put(f"{url}/stock/wh-1/SKU-{n}", json={"on_hand": requests})
    events = [request(f"order-{uuid.uuid4().hex[:12]}", "wh-1", f"SKU-{n % 50}") for n in range(requests)]
    wanted = {event.subject for event in events}
    async with TopicReader(stack.kafka_bootstrap, "inventory.events.v1") as kafka:

        def answered() -> int:
            return sum(1 for e in kafka.events() if e["type"] == "inventory.reserved" and e["subject"] in wanted)

        started = time.perf_counter()
        await _produce(stack, events)
        await _until(lambda: answered() >= requests, 600, interval=0.05)
        elapsed = time.perf_counter() - started
    return requests / elapsed, elapsed


async def _until_all_consume(stack: LocalStack, http: httpx.AsyncClient, urls: list[str]) -> None:
    """Warm up with requests inventory ignores (no location) until every replica took some:
    then the group has settled and each replica owns partitions."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await _produce(stack, [request(f"warm-{uuid.uuid4().hex[:8]}", None, "WARM") for _ in range(12)])
        counts = [_received((await http.get(url + "/metrics")).text) for url in urls]
        if all(counts):
            return
        await asyncio.sleep(1)
    raise TimeoutError("not every replica consumed within 120 s")


def _received(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("faststream_received_messages_total{")
    )


async def _produce(stack: LocalStack, events: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send("fulfillment.events.v1", event.to_bytes(), key=event.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _until(condition: Any, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", choices=["in-process", "service"], help="run one of the two measurements")
    args = parser.parse_args()
    logging.getLogger("shared.outbox").setLevel(logging.ERROR)  # "outbox not fully relayed at shutdown"
    print(f"reservation throughput; python {sys.version.split()[0]}, {os.cpu_count()} cpu(s)")
    if args.only != "service":
        await in_process(args.requests, args.concurrency)
    if args.only != "in-process":
        await service(args.requests, args.replicas)


if __name__ == "__main__":
    asyncio.run(main())
