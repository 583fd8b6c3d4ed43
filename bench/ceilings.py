"""How close the platform runs to its infrastructure's ceiling, measured side by side in one run.

    python -m bench.ceilings [--in-flight 1,8,32] [--seconds 30]

Starts its own embedded stack, a stocked location and the shop on automatic fulfilment, then:

1. platform: paid physical orders (paid -> routed -> reserved -> fulfilled -> shipping email
   sent), `N` in flight (each of N workers places one, waits until its `notification.sent` is
   seen on Kafka, places the next); orders/s over `--seconds` once every worker has finished
   one. Per order, from the services' /metrics over the whole level: store commands
   (`store_commands_total`, writes and reads), Kafka messages published and received, and
   the store process's CPU;
2. relay ceiling: a plain aiokafka chain on the same broker, with as many messages per chain
   as the platform published per order (rounded), each of the average size the platform's
   consumers received: a hop per message, each hop its own topic, consumer group and
   idempotent acks=all producer, keyed by the chain, forwarding and then committing each
   message (what the platform's relays and consumers do, minus the work); chains/s at the same
   N in flight. A chain's messages go one after the other, while some of an order's go side
   by side, so at 1 in flight the platform may beat its "ceiling";
3. store ceiling: single-document conditional writes
   (`update_one({"_id": d, "version": {"$eq": n}}, {"$set": ..., "$inc": {"version": 1}})`) and
   `_id` reads per second at 32 in flight, on documents copied from a stored order.

Prints each level with the ratios "platform / relay ceiling" and "platform / (store write
ceiling / store commands per order)" (and the same with the mix of reads and writes an order
makes). Issue 15 asks, at 32 in flight, for >= 25% of the relay ceiling, or >= 50% of what the
store's ceiling allows for the commands one order needs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from bench.harness import (
    ENV,
    EventWatch,
    counters,
    cpu_seconds,
    difference,
    embedded_stack,
    order_body,
    p50,
    prepare_shop,
    store_commands,
    store_pid,
)
from deploy.local_stack import LocalStack
from shared.settings import ServiceSettings
from shared.topics import NOTIFICATIONS_EVENTS

Document = dict[str, Any]
STORE_IN_FLIGHT = 32
STORE_SECONDS = 3.0
STORE_ROUNDS = 4
WAIT_S = 300.0
# The services' own fetch wait (the embedded broker holds an empty fetch for a good part of it,
# so it sets a hop's latency): the relay chain waits the same.
FETCH_MAX_WAIT_MS = int(
    ENV.get("KAFKA_FETCH_MAX_WAIT_MS", ServiceSettings.model_fields["kafka_fetch_max_wait_ms"].default)
)


@dataclass
class Level:
    """What `in_flight` workers did over the measured window."""

    in_flight: int
    per_second: float
    latencies: list[float]
    total: int  # every unit completed, window or not


async def closed_loop(in_flight: int, seconds: float, one: Callable[[int], Awaitable[None]]) -> Level:
    """`in_flight` workers, each doing `one(i)` after the other; the window opens once as many
    units as workers have completed (the pipeline is full) and lasts `seconds`."""
    ends: list[tuple[float, float]] = []
    window: list[float] = []  # when it opened, once it has

    async def worker(first: int) -> None:
        i = first
        while not window or time.perf_counter() < window[0] + seconds:
            started = time.perf_counter()
            await one(i)
            ends.append((started, time.perf_counter()))
            if len(ends) >= in_flight and not window:
                window.append(time.perf_counter())
            i += in_flight

    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    opened = window[0]
    inside = [end - start for start, end in ends if opened < end <= opened + seconds]
    return Level(in_flight, len(inside) / seconds, inside, len(ends))


@dataclass
class Platform:
    level: Level
    commands: float  # store commands per order
    writes: float
    reads: float
    published: float  # Kafka messages per order
    received: float
    message_bytes: float  # average size of a message the consumers received
    store_cpu: float  # share of a core
    cpu_ms: dict[str, float]  # CPU milliseconds per order, by process of the stack


async def platform_level(
    stack: LocalStack, http: httpx.AsyncClient, watch: EventWatch, sku: str, in_flight: int, seconds: float
) -> Platform:
    orders_url = f"{stack.url('orders')}/orders"

    async def one(i: int) -> None:
        reply = await http.post(orders_url, json=order_body(sku, i, paid=True))
        reply.raise_for_status()
        await watch.wait(reply.json()["id"], "notification.sent", WAIT_S)

    pid = store_pid(stack)
    processes = {child.name: child.process.pid for child in stack.children}
    cpu_each = {name: cpu_seconds(child) for name, child in processes.items()}
    before, cpu_before, started = await counters(http, stack), cpu_seconds(pid), time.perf_counter()
    level = await closed_loop(in_flight, seconds, one)
    await asyncio.sleep(2)  # the events that follow the email, and the last commits
    after, cpu_after, elapsed = await counters(http, stack), cpu_seconds(pid), time.perf_counter() - started
    cpu_ms = {name: (cpu_seconds(child) - cpu_each[name]) * 1000 / level.total for name, child in processes.items()}
    delta = difference(after, before)
    writes, reads = store_commands(delta)
    orders = level.total
    received = delta.get(("messages", "received"), 0.0)
    return Platform(
        level, (writes + reads) / orders, writes / orders, reads / orders,
        delta.get(("messages", "published"), 0.0) / orders, received / orders,
        delta.get(("messages", "received bytes"), 0.0) / max(received, 1), (cpu_after - cpu_before) / elapsed,
        cpu_ms,
    )  # fmt: skip


@dataclass
class RelayChain:
    """`hops` topics, a consumer group and an idempotent acks=all producer per hop: the first
    message is produced by `one()`, each hop forwards it to the next topic keyed the same and
    then commits, and the last hop completes the chain. Topics are new ones (the embedded broker
    creates a topic named in a metadata request), so the services never see these messages."""

    bootstrap: str
    hops: int
    payload: bytes
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    producers: list[AIOKafkaProducer] = field(default_factory=list)
    consumers: list[AIOKafkaConsumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    waiting: dict[bytes, asyncio.Future[None]] = field(default_factory=dict)

    @property
    def topics(self) -> list[str]:
        return [f"bench.relay.{self.tag}.{hop}" for hop in range(self.hops)]

    async def start(self) -> None:
        for _ in range(self.hops):  # the first one is the chain's source
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all")
            await producer.start()
            self.producers.append(producer)
        for topic in self.topics:
            await self.producers[0].partitions_for(topic)  # creates it
        for hop, topic in enumerate(self.topics):
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=self.bootstrap, group_id=f"bench-relay-{self.tag}-{hop}",
                enable_auto_commit=False, auto_offset_reset="earliest",
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS, session_timeout_ms=int(ENV["KAFKA_SESSION_TIMEOUT_MS"]),
                heartbeat_interval_ms=int(ENV["KAFKA_HEARTBEAT_INTERVAL_MS"]),
            )  # fmt: skip
            await consumer.start()
            self.consumers.append(consumer)
            self.tasks.append(asyncio.create_task(self._hop(hop, consumer)))
        deadline = time.perf_counter() + 120
        while not all(c.assignment() for c in self.consumers):
            if time.perf_counter() > deadline:
                raise TimeoutError("the relay chain's consumer groups did not get their partitions")
            await asyncio.sleep(0.1)

    async def _hop(self, hop: int, consumer: AIOKafkaConsumer) -> None:
        last = hop == self.hops - 1
        async for record in consumer:
            key = record.key or b""
            if last:
                waiter = self.waiting.pop(key, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            else:
                await self.producers[hop + 1].send_and_wait(self.topics[hop + 1], record.value, key=key)
            await consumer.commit()

    async def one(self, i: int) -> None:
        key = f"{self.tag}-{i}".encode()
        done = self.waiting[key] = asyncio.get_running_loop().create_future()
        await self.producers[0].send_and_wait(self.topics[0], self.payload, key=key)
        await asyncio.wait_for(done, WAIT_S)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for consumer in self.consumers:
            await consumer.stop()
        for producer in self.producers:
            await producer.stop()


@dataclass
class StoreCeiling:
    writes: list[float]  # conditional writes/s, per round
    reads: list[float]  # reads/s, per round
    write_ms: float  # p50 over every round
    read_ms: float


async def store_ceiling(mongo: AsyncMongoClient[Document], shape: Document) -> StoreCeiling:
    """Conditional writes/s and reads/s at STORE_IN_FLIGHT in flight, each worker on documents of
    its own (no conflicts), in a database of its own; rounds of writes and reads in turn, since
    the machine's other load comes and goes (the best round is the ceiling)."""
    collection = mongo["bench_ceiling"]["documents"]
    await collection.drop()
    ids = [f"doc-{n}" for n in range(STORE_IN_FLIGHT * 4)]
    await collection.insert_many([{**shape, "_id": doc_id, "version": 0} for doc_id in ids])
    versions = dict.fromkeys(ids, 0)

    async def write(i: int) -> None:
        doc_id = ids[i % len(ids)]
        done = await collection.update_one(
            {"_id": doc_id, "version": {"$eq": versions[doc_id]}},
            {"$set": {"updated_at": f"write {i}"}, "$inc": {"version": 1}},
        )
        if done.modified_count != 1:
            raise RuntimeError(f"conditional write of {doc_id} at version {versions[doc_id]} did not apply")
        versions[doc_id] += 1

    async def read(i: int) -> None:
        await collection.find_one({"_id": ids[i % len(ids)]})

    writes, reads = [], []
    for _ in range(STORE_ROUNDS):
        writes.append(await closed_loop(STORE_IN_FLIGHT, STORE_SECONDS, write))
        reads.append(await closed_loop(STORE_IN_FLIGHT, STORE_SECONDS, read))
    await collection.drop()
    return StoreCeiling(
        [w.per_second for w in writes], [r.per_second for r in reads],
        p50([t for w in writes for t in w.latencies]) * 1000, p50([t for r in reads for t in r.latencies]) * 1000,
    )  # fmt: skip


async def benchmark(stack: LocalStack, levels: list[int], seconds: float) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    location, sku = f"wh-{tag}", f"MUG-{tag}"
    platform: dict[int, Platform] = {}
    relay: dict[int, Level] = {}
    async with (
        httpx.AsyncClient(timeout=120, headers=stack.admin_headers(6 * 3600)) as http,
        AsyncMongoClient[Document](stack.mongodb_uri) as mongo,
        EventWatch(stack.kafka_bootstrap, (NOTIFICATIONS_EVENTS.name,)) as watch,
    ):
        await prepare_shop(http, stack, location, {sku: 10_000_000})
        await asyncio.sleep(2)  # the setup's events
        hops, payload = 0, b""
        for in_flight in levels:  # side by side, so that the machine's other load weighs on both alike
            platform[in_flight] = result = await platform_level(stack, http, watch, sku, in_flight, seconds)
            print(f"platform, {in_flight} in flight: {result.level.per_second:.2f} orders/s", flush=True)
            if not hops:
                hops, payload = max(1, round(result.published)), b"x" * round(result.message_bytes)
            chain = RelayChain(stack.kafka_bootstrap, hops, payload)  # its consumers idle only while it runs
            await chain.start()
            try:
                relay[in_flight] = await closed_loop(in_flight, seconds, chain.one)
            finally:
                await chain.stop()
            print(f"relay chain of {hops} messages of {len(payload)} bytes, {in_flight} in flight: "
                  f"{relay[in_flight].per_second:.1f} chains/s", flush=True)  # fmt: skip
        shape = await mongo["orders"]["orders"].find_one({"fulfillment_status": {"$eq": "FULFILLED"}}) or {}
        shape = {k: v for k, v in shape.items() if k != "_id"}
        ceiling = await store_ceiling(mongo, shape)
    report(platform, relay, hops, ceiling)


def report(platform: dict[int, Platform], relay: dict[int, Level], hops: int, ceiling: StoreCeiling) -> None:
    write_ceiling, read_ceiling = max(ceiling.writes), max(ceiling.reads)
    rounds = f"best of {len(ceiling.writes)} rounds of {STORE_SECONDS:.0f} s"
    print(f"\nstore ceiling at {STORE_IN_FLIGHT} in flight, {rounds}: "
          f"{write_ceiling:.0f} conditional writes/s (rounds: {', '.join(f'{n:.0f}' for n in ceiling.writes)}; "
          f"p50 {ceiling.write_ms:.1f} ms), {read_ceiling:.0f} reads/s (rounds: "
          f"{', '.join(f'{n:.0f}' for n in ceiling.reads)}; p50 {ceiling.read_ms:.1f} ms)")  # fmt: skip
    print("store-allowed orders/s = store write ceiling / store commands per order; by mix = 1 / (writes per "
          "order / write ceiling + reads per order / read ceiling)\n")  # fmt: skip
    columns = [("in flight", 9), ("orders/s", 10), ("p50 s", 7), ("cmds/order", 11), ("(w / r)", 15),
               ("msgs/order", 11), ("recv/order", 11), ("store cpu", 10), ("chains/s", 10),
               ("/ relay", 9), ("store-allowed", 14), ("/ allowed", 10), ("/ by mix", 9)]  # fmt: skip
    print("".join(f"{name:>{width}}" for name, width in columns))
    for in_flight, result in platform.items():
        rate = result.level.per_second
        chains = relay[in_flight].per_second if in_flight in relay else float("nan")
        allowed = write_ceiling / result.commands if result.commands else float("nan")
        by_mix = 1 / (result.writes / write_ceiling + result.reads / read_ceiling) if result.commands else float("nan")
        cells = [f"{in_flight}", f"{rate:.2f}", f"{p50(result.level.latencies):.2f}", f"{result.commands:.1f}",
                 f"({result.writes:.1f} / {result.reads:.1f})", f"{result.published:.1f}", f"{result.received:.1f}",
                 f"{result.store_cpu:.0%}", f"{chains:.1f}", f"{rate / chains:.1%}", f"{allowed:.2f}",
                 f"{rate / allowed:.0%}", f"{rate / by_mix:.0%}"]  # fmt: skip
        print("".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, columns, strict=True)))
    print("\nCPU milliseconds per order, by process (the stack shares this machine's "
          f"{os.cpu_count()} cores; all of them at work allow cores x 1000 / total orders/s):")  # fmt: skip
    for in_flight, result in platform.items():
        total = sum(result.cpu_ms.values())
        each = ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(result.cpu_ms.items(), key=lambda kv: -kv[1]))
        print(f"  {in_flight:>3} in flight: {each}; total {total:.1f} -> at most "
              f"{(os.cpu_count() or 1) * 1000 / total:.1f} orders/s")  # fmt: skip
    top = max(platform)
    result = platform[top]
    if top in relay and result.commands:
        rate, allowed = result.level.per_second, write_ceiling / result.commands
        print(f"\nat {top} in flight: platform / relay ceiling = {rate:.2f} / {relay[top].per_second:.1f} = "
              f"{rate / relay[top].per_second:.1%} (asked: >= 25%); platform / store-allowed = {rate:.2f} / "
              f"({write_ceiling:.0f} / {result.commands:.1f}) = {rate / allowed:.0%} (asked: >= 50%)")  # fmt: skip
    print(f"(the relay chain passes {hops} messages per chain: the platform's published messages per order, rounded)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-flight", default="1,8,32", help="orders (and chains) in flight, comma-separated")
    parser.add_argument(
        "--seconds", type=float, default=30, help="measured window per level, once the pipeline is full"
    )
    args = parser.parse_args()
    levels = sorted({int(n) for n in args.in_flight.split(",") if n.strip()})
    with embedded_stack("ceilings") as stack:
        asyncio.run(benchmark(stack, levels, args.seconds))


if __name__ == "__main__":
    main()
