"""Hardening: no single request or message stops the flow (issue: one request wedged
fulfillment's outbox; a message over 1 MiB stalled its partition; an event on the wrong topic
was processed). Against the session stack: real broker, real store, the four services."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

REAL_BROKER_DEFAULT = 1_000_000  # message.max.bytes of a real Kafka cluster, by default
ALL_TOPICS = ("orders.events.v1", "inventory.events.v1", "fulfillment.events.v1", "notifications.events.v1")


def digital_order(lines: int, url_length: int, title_length: int = 10) -> dict[str, Any]:
    path = "a" * max(url_length - len("https://cdn.example.com/") - 8, 1)
    title = "t" * max(title_length - 9, 1)
    return {
        "customer": {"email": "buyer@example.com", "name": "Buyer"},
        "currency": "SEK",
        "financial_status": "paid",
        "line_items": [
            {"sku": f"EBOOK-{i}", "title": f"Book {i:04d}{title}", "quantity": 1, "unit_price": "5.00",
             "requires_shipping": False, "digital_asset_url": f"https://cdn.example.com/{path}-{i:04d}.pdf"}
            for i in range(lines)
        ],
    }  # fmt: skip


async def fulfilled(stack: LocalStack, http: httpx.AsyncClient, order_id: str) -> bool:
    order = (await http.get(f"{stack.url('orders')}/orders/{order_id}")).json()
    return bool(order.get("fulfillment_status") == "FULFILLED")


async def test_an_order_too_large_to_announce_is_refused_naming_the_limit(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """One request of 629 KB (250 digital lines with 2 KB asset URLs, under the 1 MB body limit)
    was accepted and its fulfillment.created event (1.25 MB) wedged fulfillment's outbox."""
    body = digital_order(250, 2_040, title_length=255)
    assert 600_000 < len(json.dumps(body)) < 1_000_000, "as in the probe: under the body limit"
    reply = await http.post(f"{stack.url('orders')}/orders", json=body)
    assert reply.status_code == 422, reply.text
    [detail] = reply.json()["error"]["details"]
    assert detail["field"] == "line_items"
    assert "256000 bytes" in detail["reason"]


async def test_the_largest_order_accepted_flows_through_with_every_event_under_the_broker_limit(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """An order just under the bound goes all the way (routed, fulfilled, emailed) and no event
    it causes comes near a real cluster's default 1 MB limit; the orders after it flow too."""
    async with TopicReader(stack.kafka_bootstrap, *ALL_TOPICS) as kafka:
        big = digital_order(250, 700)
        reply = await http.post(f"{stack.url('orders')}/orders", json=big)
        assert reply.status_code == 201, reply.text
        big_id = reply.json()["id"]
        small = await http.post(f"{stack.url('orders')}/orders", json=digital_order(1, 60))
        assert small.status_code == 201, small.text
        await eventually(lambda: fulfilled(stack, http, big_id), timeout=60)
        await eventually(lambda: fulfilled(stack, http, small.json()["id"]), timeout=30)

        async def emailed() -> bool:
            sent = (await http.get(f"{stack.url('notifications')}/notifications", params={"order_id": big_id})).json()
            return any(n["status"] == "sent" for n in sent["items"])

        await eventually(emailed, timeout=60)
        sizes = [len(r.value or b"") for r in kafka.records if r.key == big_id.encode()]
        assert sizes and max(sizes) < REAL_BROKER_DEFAULT * 0.8, f"largest event {max(sizes)} bytes"


async def test_a_message_over_1_mib_is_dead_lettered_truncated_and_the_partition_moves_on(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """A message over 1 MiB stalled its partition forever: dead-lettering it failed with
    MessageSizeTooLargeError, it was redelivered thousands of times and the valid messages behind
    it were never applied. A message that cannot be dead-lettered whole is dead-lettered as a
    truncated record with the reason."""
    created = await http.post(
        f"{stack.url('orders')}/orders", json={**digital_order(1, 60), "financial_status": "pending"}
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    poison = b'{"specversion": "1.0", "junk": "' + b"x" * 1_200_000 + b'"}'
    async with TopicReader(stack.kafka_bootstrap, "orders.events.v1.dlq") as dlq:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, max_request_size=4_000_000)
        await producer.start()
        try:
            # Same key as the order: the poison sits on its partition, ahead of its order.paid.
            await producer.send_and_wait("orders.events.v1", poison, key=order_id.encode())
        finally:
            await producer.stop()
        paid = await http.post(f"{stack.url('orders')}/orders/{order_id}/pay")
        assert paid.status_code == 200, paid.text
        await eventually(lambda: fulfilled(stack, http, order_id), timeout=30)

        def letters() -> list[dict[str, str]]:
            return [{k: v.decode() for k, v in r.headers} for r in dlq.records if r.key == order_id.encode()]

        found = await eventually(lambda: len(letters()) >= 3 and letters(), timeout=30)
        groups = {h["x-dlq-consumer-group"] for h in found}
        assert {"fulfillment", "inventory", "notifications"} <= groups
        assert all(h["x-dlq-reason"] == "malformed" for h in found)
        assert all(h["x-dlq-truncated-from-bytes"] == str(len(poison)) for h in found)
        summary = json.loads(next(r.value for r in dlq.records if r.key == order_id.encode()) or b"")
        assert summary["truncated"] is True and summary["original_bytes"] == len(poison)


async def test_an_event_on_a_topic_it_does_not_belong_to_is_dead_lettered_not_processed(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """An event of a type that does not belong to the topic it arrived on (an order.paid on
    fulfillment.responses.v1) was processed."""
    async with TopicReader(stack.kafka_bootstrap, "orders.events.v1", "fulfillment.responses.v1.dlq") as kafka:
        created = await http.post(
            f"{stack.url('orders')}/orders", json={**digital_order(1, 60), "financial_status": "pending"}
        )
        order_id = created.json()["id"]
        [announced] = await eventually(lambda: kafka.events(order_id, "orders.events.v1"), timeout=20)
        forged = {**announced, "id": str(uuid.uuid4()), "type": "order.paid"}
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("fulfillment.responses.v1", json.dumps(forged).encode(), key=order_id.encode())
        finally:
            await producer.stop()

        def letter() -> dict[str, str] | None:
            for record in kafka.records:
                if record.topic == "fulfillment.responses.v1.dlq" and record.key == order_id.encode():
                    return {k: v.decode() for k, v in record.headers}
            return None

        headers = await eventually(letter, timeout=20)
        assert headers["x-dlq-reason"] == "wrong_topic"
        assert "order.paid belongs on orders.events.v1" in headers["x-dlq-error"]
    fulfillment_orders = await http.get(f"{stack.url('fulfillment')}/fulfillment-orders", params={"order_id": order_id})
    assert fulfillment_orders.json()["items"] == [], "the forged order.paid was routed"
