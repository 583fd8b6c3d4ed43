"""The inventory service as a process against the real embedded broker and store: fulfillment's
requests arrive over Kafka, answers leave over Kafka; replicas compete, messages are duplicated,
the process is killed.

A stack of its own (broker, store, inventory only), so that killing inventory does not disturb
the session's stack.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from deploy.local_stack import Child, LocalStack, free_port, is_ready
from shared.catalog import FulfillmentOrderChanged, FulfillmentOrderSnapshot
from shared.events import CloudEvent, new_event
from tests.conftest import eventually, running_stack
from tests.kafka_tools import TopicReader

NOW = "2026-01-01T00:00:00.000000+00:00"
FULFILLMENT_TOPIC, INVENTORY_TOPIC = "fulfillment.events.v1", "inventory.events.v1"
ANSWERS = ("inventory.reserved", "inventory.reservation_failed")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # Inventory sends no email: an SMTP_HOST, so that no local sink is started.
    with running_stack(tmp_path_factory.mktemp("inventory-service"), ["inventory"], SMTP_HOST="127.0.0.1") as local:
        yield local


@pytest.fixture
async def kafka(stack: LocalStack) -> AsyncIterator[TopicReader]:
    async with TopicReader(stack.kafka_bootstrap, INVENTORY_TOPIC) as reader:
        yield reader


@pytest.fixture
async def stock_db(stack: LocalStack) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(stack.mongodb_uri)
    try:
        yield client["inventory"]["stock"]
    finally:
        await client.close()


def request(
    order_id: str, location_id: str | None, sku: str, quantity: int = 1, fo_id: str | None = None
) -> CloudEvent:
    """fulfillment_order.created as fulfillment sends it: reserve these lines at this location."""
    snapshot = FulfillmentOrderSnapshot.model_validate({
        "id": fo_id or f"fo-{order_id}", "order_id": order_id, "location_id": location_id, "status": "OPEN",
        "line_items": [{"line_item_id": "li-1", "sku": sku, "quantity": quantity}],
        "created_at": NOW, "updated_at": NOW,
    })  # fmt: skip
    return new_event(
        "fulfillment", "fulfillment_order.created", order_id, FulfillmentOrderChanged(fulfillment_order=snapshot)
    )


async def produce(stack: LocalStack, *events: CloudEvent) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send(FULFILLMENT_TOPIC, event.to_bytes(), key=event.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def stocked(http: httpx.AsyncClient, stack: LocalStack, on_hand: int) -> tuple[str, str]:
    """A fresh location and sku for one test, with `on_hand` units."""
    location_id, sku = f"wh-{uuid.uuid4().hex[:8]}", f"SKU-{uuid.uuid4().hex[:8]}"
    reply = await http.put(f"{stack.url('inventory')}/locations/{location_id}", json={"name": "Warehouse"})
    assert reply.status_code == 201, reply.text
    reply = await http.put(f"{stack.url('inventory')}/stock/{location_id}/{sku}", json={"on_hand": on_hand})
    assert reply.status_code == 200, reply.text
    return location_id, sku


async def stock_at(http: httpx.AsyncClient, stack: LocalStack, sku: str) -> dict[str, Any]:
    body = (await http.get(f"{stack.url('inventory')}/stock/{sku}")).json()
    [level] = body["locations"]
    return dict(level)


def answers(kafka: TopicReader, order_ids: list[str]) -> dict[str, list[str]]:
    wanted = set(order_ids)
    found: dict[str, list[str]] = {}
    for event in kafka.events(topic=INVENTORY_TOPIC):
        if event["subject"] in wanted and event["type"] in ANSWERS:
            found.setdefault(event["subject"], []).append(event["type"])
    return found


def received_messages(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("faststream_received_messages_total{")
    )


async def test_fifty_concurrent_requests_from_two_replicas_reserve_ten_units_exactly_ten_times(
    stack: LocalStack, http: httpx.AsyncClient, kafka: TopicReader
) -> None:
    replica_port = free_port()
    replica = stack._spawn(
        "inventory-replica", [sys.executable, "-m", "services.inventory"], stack.service_env("inventory", replica_port)
    )
    replica_url = f"http://127.0.0.1:{replica_port}"
    try:
        await eventually(lambda: is_ready(replica_url + "/readyz"), timeout=60)
        # Both replicas must own partitions before the burst: warm up with requests that
        # inventory ignores (no location) until each replica has handled some.
        urls = [stack.url("inventory"), replica_url]

        async def both_consume() -> bool:
            await produce(stack, *(request(f"warm-{uuid.uuid4().hex[:8]}", None, "WARM") for _ in range(12)))
            counts = [received_messages((await http.get(url + "/metrics")).text) for url in urls]
            return all(counts)

        await eventually(both_consume, timeout=60, interval=1)
        before = [received_messages((await http.get(url + "/metrics")).text) for url in urls]

        location_id, sku = await stocked(http, stack, on_hand=10)
        order_ids = [f"order-{uuid.uuid4().hex[:10]}" for _ in range(50)]
        await produce(stack, *(request(order_id, location_id, sku) for order_id in order_ids))

        await eventually(lambda: len(answers(kafka, order_ids)) == 50, timeout=120)
        outcome = [types for types in answers(kafka, order_ids).values()]
        assert all(len(types) == 1 for types in outcome), outcome
        flat = [types[0] for types in outcome]
        assert (flat.count("inventory.reserved"), flat.count("inventory.reservation_failed")) == (10, 40)
        assert await stock_at(http, stack, sku) == {"location_id": location_id, "on_hand": 10, "reserved": 10,
                                                    "available": 0}  # fmt: skip
        after = [received_messages((await http.get(url + "/metrics")).text) for url in urls]
        assert all(a > b for a, b in zip(after, before, strict=True)), "both replicas took requests"
    finally:
        stack.stop_child(replica)


async def test_a_request_delivered_twice_reserves_once(
    stack: LocalStack, http: httpx.AsyncClient, kafka: TopicReader, stock_db: Any
) -> None:
    location_id, sku = await stocked(http, stack, on_hand=10)
    order_id = f"order-{uuid.uuid4().hex[:10]}"
    duplicated = request(order_id, location_id, sku, quantity=3)
    # Same event (same id) twice, then another request of the same order: same key, same
    # partition, so once it is answered the duplicate has been consumed too.
    marker = request(order_id, location_id, sku, quantity=1, fo_id=f"fo-marker-{order_id}")
    await produce(stack, duplicated, duplicated, marker)

    def answered() -> list[dict[str, Any]]:
        return [e for e in kafka.events(order_id, INVENTORY_TOPIC) if e["type"] in ANSWERS]

    await eventually(lambda: len(answered()) >= 2, timeout=60)
    reserved = [(e["data"]["fulfillment_order_id"], e["data"]["lines"]) for e in answered()]
    assert reserved == [
        (f"fo-{order_id}", [{"sku": sku, "quantity": 3}]),
        (f"fo-marker-{order_id}", [{"sku": sku, "quantity": 1}]),
    ]
    assert (await stock_at(http, stack, sku))["reserved"] == 4

    async def outbox_drained() -> bool:
        stored = await stock_db.find_one({"_id": f"{location_id}/{sku}"})
        return bool(stored["outbox"] == {} and not stored["outbox_pending"])

    await eventually(outbox_drained, timeout=30)


@pytest.mark.parametrize("fault", ["inventory.after_stock_update", "inventory.after_reservation_write"])
async def test_a_crash_between_stock_update_and_event_publication_loses_no_event(
    stack: LocalStack, http: httpx.AsyncClient, kafka: TopicReader, stock_db: Any, fault: str, tmp_path: Path
) -> None:
    location_id, sku = await stocked(http, stack, on_hand=10)
    order_id = f"order-{uuid.uuid4().hex[:10]}"
    inventory = _restart_inventory(stack, {"FAULT_CRASH_AT": fault, "FAULT_MARKER": str(tmp_path / "crashed")})
    await eventually(lambda: is_ready(stack.url("inventory") + "/readyz"), timeout=60)

    await produce(stack, request(order_id, location_id, sku, quantity=3))

    await eventually(lambda: inventory.process.poll() is not None, timeout=60)
    assert (tmp_path / "crashed").read_text() == fault
    stored = await stock_db.find_one({"_id": f"{location_id}/{sku}"})
    assert (stored["on_hand"], stored["reserved"]) == (10, 3)  # the stock moved before the crash

    def answered() -> list[str]:
        """The answers as consumers take them: once per event id. (A one-stock request's answer
        is written with its stock change; the redelivery announces it again under the same id.)"""
        once = {e["id"]: e["type"] for e in kafka.events(order_id, INVENTORY_TOPIC) if e["type"] in ANSWERS}
        return list(once.values())

    assert len(answered()) <= 1

    _restart_inventory(stack, {"FAULT_CRASH_AT": fault, "FAULT_MARKER": str(tmp_path / "crashed")})
    await eventually(lambda: is_ready(stack.url("inventory") + "/readyz"), timeout=60)

    await eventually(answered, timeout=90)
    # A later request on the same partition is answered only after the redelivered one.
    await produce(stack, request(order_id, location_id, sku, quantity=1, fo_id=f"fo-marker-{order_id}"))
    await eventually(lambda: len(answered()) >= 2, timeout=60)
    assert answered() == ["inventory.reserved", "inventory.reserved"]
    first = next(e for e in kafka.events(order_id, INVENTORY_TOPIC) if e["type"] == "inventory.reserved")
    assert (first["data"]["fulfillment_order_id"], first["data"]["lines"]) == (
        f"fo-{order_id}",
        [{"sku": sku, "quantity": 3}],
    )
    assert (await stock_at(http, stack, sku))["reserved"] == 4  # 3 + 1: the redelivery reserved nothing twice
    levels = [(e["data"]["on_hand"], e["data"]["reserved"]) for e in kafka.events(sku, INVENTORY_TOPIC)]
    assert sorted(set(levels)) == [(10, 0), (10, 3), (10, 4)]  # every stock change's level event went out


def _restart_inventory(stack: LocalStack, env: dict[str, str]) -> Child:
    """Stop (or clean up after) the running inventory and start it again with `env` added."""
    for child in [c for c in stack.children if c.name == "inventory"]:
        stack.kill_child(child)
    saved = dict(stack.extra_env)
    stack.extra_env.update(env)
    try:
        return stack.start_service("inventory")
    finally:
        stack.extra_env.clear()
        stack.extra_env.update(saved)
