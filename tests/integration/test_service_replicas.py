"""A second replica of a service shares the partitions of its consumer group, and the
effects stay exactly once while the group rebalances."""

from __future__ import annotations

import re

import httpx

from deploy.local_stack import LocalStack
from shared.catalog import FulfillmentOrderChanged, FulfillmentOrderSnapshot, FulfillmentOrderStatus, OrderSnapshot
from shared.events import new_event
from tests.conftest import eventually
from tests.kafka_tools import produce_raw


def received(metrics: str) -> float:
    found = re.findall(r'^faststream_received_messages_total\{app_name="orders"[^}]*\} (\S+)$', metrics, re.M)
    return sum(float(v) for v in found)


async def test_two_orders_replicas_split_the_work(stack: LocalStack, http: httpx.AsyncClient) -> None:
    order = {
        "customer": {"email": "buyer@example.com", "name": "Ada"},
        "currency": "SEK",
        "line_items": [
            {"sku": "EBOOK", "title": "Ebook", "quantity": 1, "unit_price": "5", "requires_shipping": False,
             "digital_asset_url": "https://cdn.example.com/ebook.pdf"},
        ],
    }  # fmt: skip
    replica = stack.start_replica("orders", "orders-2")
    try:
        stack.wait_until_ready()
        before = {
            name: received((await http.get(stack.url(name) + "/metrics")).text) for name in ("orders", "orders-2")
        }
        snapshots = []
        for _ in range(24):
            reply = await http.post(stack.url("orders") + "/orders", json=order)
            assert reply.status_code == 201, reply.text
            snapshots.append(OrderSnapshot.model_validate(reply.json()))

        # An event per order, keyed by order id: spread over the topic's six partitions.
        for snapshot in snapshots:
            fulfillment_order = FulfillmentOrderSnapshot(
                id=f"fo-{snapshot.id}", order_id=snapshot.id, location_id=None, status=FulfillmentOrderStatus.OPEN,
                line_items=[], created_at=snapshot.created_at, updated_at=snapshot.created_at,
            )  # fmt: skip
            event = new_event("fulfillment", "fulfillment_order.opened", snapshot.id,
                              FulfillmentOrderChanged(fulfillment_order=fulfillment_order))  # fmt: skip
            await produce_raw(stack.kafka_bootstrap, "fulfillment.events.v1", event.to_bytes(), snapshot.id.encode())

        async def timeline_counts() -> list[int]:
            counts = []
            for snapshot in snapshots:
                body = (await http.get(f"{stack.url('orders')}/orders/{snapshot.id}")).json()
                counts.append(sum(1 for e in body["timeline"] if e["type"] == "fulfillment_order.opened"))
            return counts

        await eventually(lambda: _all_recorded(timeline_counts()), timeout=60, interval=0.5)
        assert await timeline_counts() == [1] * len(snapshots), "each event applied exactly once"

        after = {name: received((await http.get(stack.url(name) + "/metrics")).text) for name in ("orders", "orders-2")}
        assert after["orders"] > before["orders"], "the first replica kept some partitions"
        assert after["orders-2"] > before["orders-2"], "the second replica got partitions of its own"
    finally:
        stack.stop_child(replica)
        del stack.service_ports["orders-2"]


async def _all_recorded(counts: object) -> bool:
    return all(c >= 1 for c in await counts)  # type: ignore[misc]
