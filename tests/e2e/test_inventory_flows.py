"""Stock through an order's life, over the whole stack: paid -> reserved at the location it was
routed to, partly shipped -> committed, cancelled with restock -> shipped units back on hand and
the rest released. Each test uses a fresh location and sku, so other tests' stock is not in play.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

INVENTORY_TOPIC = "inventory.events.v1"


def paid_order(sku: str, quantity: int) -> dict[str, Any]:
    return {
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"},
        "shipping_address": {"name": "Ada Buyer", "address1": "Storgatan 1", "city": "Stockholm",
                             "zip": "11122", "country_code": "SE"},
        "currency": "SEK",
        "financial_status": "paid",
        "line_items": [{"sku": sku, "title": "Mug", "quantity": quantity, "unit_price": "99.50"}],
    }  # fmt: skip


async def test_stock_follows_an_order_from_payment_to_a_restocking_cancel(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    inventory, location_id, sku = stack.url("inventory"), f"wh-{uuid.uuid4().hex[:8]}", f"MUG-{uuid.uuid4().hex[:8]}"

    async def level() -> dict[str, Any]:
        levels = (await http.get(f"{inventory}/stock/{sku}")).json()["locations"]
        return next((lv for lv in levels if lv["location_id"] == location_id), {})

    async def level_is(on_hand: int, reserved: int) -> bool:
        return (await level()) == {"location_id": location_id, "on_hand": on_hand, "reserved": reserved,
                                   "available": on_hand - reserved}  # fmt: skip

    async with TopicReader(stack.kafka_bootstrap, INVENTORY_TOPIC) as kafka:
        assert (await http.put(f"{inventory}/locations/{location_id}", json={"name": "E2E"})).status_code == 201
        assert (await http.put(f"{inventory}/stock/{location_id}/{sku}", json={"on_hand": 5})).status_code == 200
        await eventually(lambda: any(e["type"] == "location.updated" for e in kafka.events(location_id)))
        await eventually(lambda: [e["data"]["on_hand"] for e in kafka.events(sku)] == [5])

        async def routing_sees_it() -> bool:
            # Fulfillment's routing knows the stock, not only inventory's topic: an order placed
            # before would wait on an out-of-stock hold and be re-routed later.
            view = (await http.get(f"{stack.url('fulfillment')}/routing/stock/{sku}")).json()
            return any(lv["location_id"] == location_id and lv["available"] == 5 for lv in view.get("locations", []))

        await eventually(routing_sees_it, timeout=30)

        created = await http.post(stack.url("orders") + "/orders", json=paid_order(sku, 3))
        assert created.status_code == 201, created.text
        order_id = created.json()["id"]

        # fulfillment routes it to our location (the only one with the sku); inventory holds 3
        await eventually(lambda: level_is(5, 3), timeout=60)
        [record] = (await http.get(f"{inventory}/reservations", params={"order_id": order_id})).json()["items"]
        assert record["status"] == "reserved"
        assert record["holds"] == [{"location_id": location_id, "sku": sku, "quantity": 3}]

        # two of three ship (once fulfillment heard the stock is held): they leave on_hand and the hold
        async def reserved_fulfillment_order() -> dict[str, Any] | None:
            listed = await http.get(stack.url("fulfillment") + "/fulfillment-orders", params={"order_id": order_id})
            live = [fo for fo in listed.json()["items"] if fo["status"] != "CANCELLED"]
            return live[0] if len(live) == 1 and live[0]["reservation_status"] == "RESERVED" else None

        fo = await eventually(reserved_fulfillment_order, timeout=30)
        line_item_id = fo["line_items"][0]["line_item_id"]
        shipped = await http.post(
            f"{stack.url('fulfillment')}/fulfillment-orders/{fo['id']}/fulfillments",
            json={"line_items": [{"line_item_id": line_item_id, "quantity": 2}], "notify_customer": False},
        )
        assert shipped.status_code == 201, shipped.text
        await eventually(lambda: level_is(3, 1), timeout=60)

        # cancelled with restock: the two shipped come back on hand, the held one is released
        cancelled = await http.post(
            f"{stack.url('orders')}/orders/{order_id}/cancel",
            json={"refund": "none", "restock": True, "notify_customer": False, "reason": "customer"},
        )
        assert cancelled.status_code == 200, cancelled.text
        await eventually(lambda: level_is(5, 0), timeout=60)

        def moved() -> list[tuple[str, int]]:
            return [(e["type"], sum(line["quantity"] for line in e["data"]["lines"]))
                    for e in kafka.events(order_id, INVENTORY_TOPIC)]  # fmt: skip

        await eventually(lambda: len(moved()) >= 4, timeout=30)
        assert moved()[:2] == [("inventory.reserved", 3), ("inventory.committed", 2)]
        # order.cancelled (restock) and fulfillment_order.cancelled (release) travel on different
        # topics, so either may reach inventory first; each moves its own stock once.
        assert sorted(moved()[2:]) == [("inventory.released", 1), ("inventory.restocked", 2)]
        # and every one of those stock changes was announced with its level
        levels = [(e["data"]["on_hand"], e["data"]["reserved"]) for e in kafka.events(sku, INVENTORY_TOPIC)]
        assert levels[:3] == [(5, 0), (5, 3), (3, 1)]
        assert levels[3:] in ([(5, 1), (5, 0)], [(3, 0), (5, 0)])


async def test_a_new_location_is_announced_and_listed_by_priority(stack: LocalStack, http: httpx.AsyncClient) -> None:
    inventory, location_id = stack.url("inventory"), f"wh-{uuid.uuid4().hex[:8]}"
    async with TopicReader(stack.kafka_bootstrap, INVENTORY_TOPIC) as kafka:
        reply = await http.put(f"{inventory}/locations/{location_id}", json={"name": "Annex", "active": False})
        assert reply.status_code == 201, reply.text
        priority = reply.json()["priority"]
        listed = (await http.get(f"{inventory}/locations")).json()["items"]
        assert [loc["priority"] for loc in listed] == sorted(loc["priority"] for loc in listed)
        assert listed[-1]["id"] == location_id  # no priority asked: last
        await eventually(lambda: [e["data"] for e in kafka.events(location_id)] == [
            {"id": location_id, "name": "Annex", "priority": priority, "active": False, "fulfillment_service": None,
             "workflow": "new"},
        ])  # fmt: skip
