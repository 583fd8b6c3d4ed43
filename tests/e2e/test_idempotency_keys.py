"""A client that retries a POST with the same Idempotency-Key gets the first answer again,
and nothing is done twice."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

ORDER: dict[str, Any] = {
    "customer": {"email": "buyer@example.com", "name": "Ada"},
    "currency": "SEK",
    "line_items": [{"sku": "EBOOK-KEY", "title": "Ebook", "quantity": 1, "unit_price": "5.00",
                    "requires_shipping": False, "digital_asset_url": "https://cdn.example.com/e.pdf"}],
}  # fmt: skip


async def test_a_retried_order_is_placed_once(stack: LocalStack, http: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    async with TopicReader(stack.kafka_bootstrap, "orders.events.v1") as kafka:
        first = await http.post(stack.url("orders") + "/orders", json=ORDER, headers=key)
        retry = await http.post(stack.url("orders") + "/orders", json=ORDER, headers=key)
        assert first.status_code == retry.status_code == 201
        assert retry.json()["id"] == first.json()["id"]
        assert retry.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers

        # Paying it, with a key of its own, gives one order.paid; the order.created of a second
        # order would have another subject, and none is on the topic for this customer's retry.
        order_id = first.json()["id"]
        pay_key = {"Idempotency-Key": str(uuid.uuid4())}
        for _ in range(2):
            assert (await http.post(f"{stack.url('orders')}/orders/{order_id}/pay", headers=pay_key)).status_code == 200
        await eventually(lambda: "order.paid" in kafka.types(order_id))
        created = [e for e in kafka.events(topic="orders.events.v1") if e["type"] == "order.created"]
        assert [e["subject"] for e in created].count(order_id) == 1


async def test_the_same_key_for_another_request_is_refused(stack: LocalStack, http: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert (await http.post(stack.url("orders") + "/orders", json=ORDER, headers=key)).status_code == 201
    other = {**ORDER, "currency": "EUR"}
    reply = await http.post(stack.url("orders") + "/orders", json=other, headers=key)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_refusal_is_replayed_too(stack: LocalStack, http: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    bad = {**ORDER, "line_items": []}
    first = await http.post(stack.url("orders") + "/orders", json=bad, headers=key)
    retry = await http.post(stack.url("orders") + "/orders", json=bad, headers=key)
    assert first.status_code == retry.status_code == 422
    assert retry.json() == first.json()


async def test_a_key_that_is_too_long_is_refused(stack: LocalStack, http: httpx.AsyncClient) -> None:
    reply = await http.post(stack.url("orders") + "/orders", json=ORDER, headers={"Idempotency-Key": "k" * 256})
    assert reply.status_code == 422
    assert "Idempotency-Key" in reply.json()["error"]["message"]


async def test_a_retried_shipment_ships_once(stack: LocalStack, http: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    location, sku = f"wh-{tag}", f"MUG-{tag}"
    assert (await http.put(f"{stack.url('inventory')}/locations/{location}", json={"name": "Keys"})).status_code == 201
    assert (await http.put(f"{stack.url('inventory')}/stock/{location}/{sku}", json={"on_hand": 5})).status_code == 200

    async def routing_sees_it() -> bool:
        view = (await http.get(f"{stack.url('fulfillment')}/routing/stock/{sku}")).json()
        return any(level.get("available", 0) > 0 for level in view.get("locations", view.get("items", [])))

    await eventually(routing_sees_it)
    order = {
        **ORDER, "financial_status": "paid",
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "country_code": "SE"},
        "line_items": [{"sku": sku, "title": "Mug", "quantity": 2, "unit_price": "10.00"}],
    }  # fmt: skip
    order_id = (await http.post(stack.url("orders") + "/orders", json=order)).json()["id"]

    async def open_and_reserved() -> dict[str, Any] | None:
        reply = await http.get(stack.url("fulfillment") + "/fulfillment-orders", params={"order_id": order_id})
        items = [fo for fo in reply.json()["items"] if (fo["status"], fo["reservation_status"]) == ("OPEN", "RESERVED")]
        return items[0] if items else None

    fulfillment_order = await eventually(open_and_reserved, timeout=30)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    one_line = {"line_items": [{"line_item_id": fulfillment_order["line_items"][0]["line_item_id"], "quantity": 1}]}
    url = f"{stack.url('fulfillment')}/fulfillment-orders/{fulfillment_order['id']}/fulfillments"
    first = await http.post(url, json=one_line, headers=key)
    retry = await http.post(url, json=one_line, headers=key)
    assert first.status_code == retry.status_code == 201, first.text
    assert retry.json()["id"] == first.json()["id"]
    after = (await http.get(f"{stack.url('fulfillment')}/fulfillment-orders/{fulfillment_order['id']}")).json()
    assert after["line_items"][0]["fulfilled_quantity"] == 1
