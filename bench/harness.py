"""What bench.growth and bench.ceilings share: an embedded stack on free ports, a shop ready to
take orders, a watch on the platform's event topics, the services' counters, and the store
process's CPU time. Figures only: nothing here asserts anything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from deploy.local_stack import LocalStack  # noqa: E402
from shared.topics import (  # noqa: E402
    FULFILLMENT_EVENTS,
    INVENTORY_EVENTS,
    NOTIFICATIONS_EVENTS,
    ORDERS_EVENTS,
    all_topic_partitions,
)

SERVICES = ("orders", "inventory", "fulfillment", "notifications")
ENV = {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500", "LOG_LEVEL": "WARNING",
       "DOWNLOAD_LINK_SECRET": "bench-secret-of-at-least-16-bytes"}  # fmt: skip
EVENT_TOPICS = (ORDERS_EVENTS.name, INVENTORY_EVENTS.name, FULFILLMENT_EVENTS.name, NOTIFICATIONS_EVENTS.name)
ADDRESS = {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122", "country_code": "SE"}


@contextlib.contextmanager
def embedded_stack(name: str, services: Iterable[str] = SERVICES) -> Iterator[LocalStack]:
    """Broker, store, SMTP sink and the services (all four unless told) on free ports, data in
    memory, stopped after."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as data_dir:
        stack = LocalStack(
            data_dir=Path(data_dir), kafka_port=0, mongo_port=0, smtp_port=0,
            service_ports=dict.fromkeys(services, 0), persistent_store=False, use_environment=False, extra_env=ENV,
        )  # fmt: skip
        try:
            started = time.perf_counter()
            stack.start_infrastructure()
            stack.start_services()
            stack.wait_until_ready(180)
            print(f"stack ready in {time.perf_counter() - started:.1f}s", flush=True)
            yield stack
        finally:
            stack.stop()


def order_body(sku: str, i: int, *, paid: bool = False, quantity: int = 1) -> dict[str, Any]:
    """A physical order of one line, as a shop would place it."""
    body: dict[str, Any] = {
        "customer": {"email": f"buyer+{i}@example.com", "name": "Bench Buyer"},
        "shipping_address": ADDRESS, "currency": "SEK",
        "line_items": [{"sku": sku, "title": "Mug", "quantity": quantity, "unit_price": "10.00"}],
    }  # fmt: skip
    if paid:
        body["financial_status"] = "paid"
    return body


async def prepare_shop(http: httpx.AsyncClient, stack: LocalStack, location: str, stock: dict[str, int]) -> None:
    """A location of first priority with `stock` on hand, the shop on automatic fulfilment, and
    routing's copy of the stock caught up (else the first orders would wait for it)."""
    (
        await http.put(f"{stack.url('inventory')}/locations/{location}", json={"name": "Bench", "priority": 1})
    ).raise_for_status()
    for sku, on_hand in stock.items():
        reply = await http.put(f"{stack.url('inventory')}/stock/{location}/{sku}", json={"on_hand": on_hand})
        reply.raise_for_status()
    (await http.put(f"{stack.url('fulfillment')}/settings", json={"auto_fulfill": True})).raise_for_status()
    for sku, on_hand in stock.items():
        while True:
            view = (await http.get(f"{stack.url('fulfillment')}/routing/stock/{sku}")).json()
            if any(level["location_id"] == location and level["available"] >= on_hand for level in view["locations"]):
                break
            await asyncio.sleep(0.1)


def event_type(value: bytes) -> str:
    """The `type` of a CloudEvent value, without decoding it all: the envelope's own `type` comes
    before its `data` (pydantic writes fields in declaration order), so the first one is it."""
    start = value.find(b'"type":"')
    if start < 0:
        return ""
    start += len(b'"type":"')
    return value[start : value.find(b'"', start)].decode()


class EventWatch:
    """Reads the platform's event topics from their end (no consumer group, so it changes nothing)
    and notes when each (order, event type) was first seen: latencies without polling the API,
    which would itself load the services being measured. An order's
    `order.fulfillment_status_changed` is noted as `...:<status>`."""

    def __init__(self, bootstrap: str, topics: tuple[str, ...] = EVENT_TOPICS) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.seen: dict[tuple[str, str], float] = {}
        self.counts: Counter[str] = Counter()
        self._arrived = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventWatch:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
        await consumer.start()
        counts = all_topic_partitions()
        partitions = [TopicPartition(topic, p) for topic in self.topics for p in range(counts[topic])]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before anything is produced
            await consumer.position(partition)
        self._consumer = consumer
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    kind = event_type(record.value or b"")
                    if kind == "order.fulfillment_status_changed":
                        with contextlib.suppress(ValueError, KeyError, TypeError):
                            kind += ":" + json.loads(record.value or b"")["data"]["fulfillment_status"]
                    key = (record.key or b"").decode()
                    self.counts[kind] += 1
                    self.seen.setdefault((key, kind), now)
            if batches:
                async with self._arrived:
                    self._arrived.notify_all()

    async def wait(self, key: str, kind: str, timeout: float) -> float:
        """When `kind` was first seen for `key` (perf_counter seconds); TimeoutError after `timeout`."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: (key, kind) in self.seen)
        return self.seen[key, kind]


Counters = dict[tuple[str, str], float]


async def counters(http: httpx.AsyncClient, stack: LocalStack) -> Counters:
    """Every service's counters so far, summed over labels except the ones kept:
    ("store", "<service> <collection> <command>") per store command, and ("messages", "published" |
    "received" | "received bytes")."""
    totals: Counters = defaultdict(float)
    for service in SERVICES:
        text = (await http.get(stack.url(service) + "/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "store_commands_total":
                    labels = sample.labels
                    totals["store", f"{service} {labels['collection']} {labels['command']}"] += sample.value
                elif sample.name == "faststream_published_messages_total":
                    totals["messages", "published"] += sample.value
                elif sample.name == "faststream_received_messages_total":
                    totals["messages", "received"] += sample.value
                elif sample.name == "faststream_received_messages_size_bytes_sum":
                    totals["messages", "received bytes"] += sample.value
    return totals


def difference(after: Counters, before: Counters) -> Counters:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify"})


def store_commands(delta: Counters) -> tuple[float, float]:
    """(writes, reads) among the store commands of a counters() difference."""
    writes = reads = 0.0
    for (kind, name), n in delta.items():
        if kind == "store":
            if name.rsplit(" ", 1)[-1] in WRITE_COMMANDS:
                writes += n
            else:
                reads += n
    return writes, reads


def store_pid(stack: LocalStack) -> int:
    """The embedded store's process (nx-27017), one of the stack's children."""
    return next(child.process.pid for child in stack.children if child.name == "mongo")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc/<pid>/stat (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def p50(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def p95(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=20, method="inclusive")[18]
