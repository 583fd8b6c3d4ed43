"""The thin flow through all four services, over HTTP and the embedded Kafka and MongoDB."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.kafka_tools import TopicReader, produce_raw

pytestmark = pytest.mark.e2e


def new_order(paid: bool = False, sku: str = "MUG-1") -> dict[str, Any]:
    return {
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"},
        "shipping_address": {"name": "Ada Buyer", "address1": "Storgatan 1", "city": "Stockholm",
                             "zip": "11122", "country_code": "SE"},
        "currency": "SEK",
        "financial_status": "paid" if paid else "pending",
        "line_items": [{"sku": sku, "title": "Mug", "quantity": 2, "unit_price": "99.50"}],
    }  # fmt: skip


async def stocked_sku(stack: LocalStack, http: httpx.AsyncClient, on_hand: int = 10) -> str:
    """A sku of this test's own, in stock at a location of its own, known to fulfillment's routing."""
    tag = uuid.uuid4().hex[:8]
    sku, location_id = f"MUG-{tag}", f"wh-{tag}"
    reply = await http.put(f"{stack.url('inventory')}/locations/{location_id}", json={"name": "Skeleton"})
    assert reply.status_code == 201, reply.text
    reply = await http.put(f"{stack.url('inventory')}/stock/{location_id}/{sku}", json={"on_hand": on_hand})
    assert reply.status_code == 200, reply.text

    async def routing_sees_it() -> bool:
        # The stock, not only the location: routing lists a location it knows with 0 available
        # until inventory's level event reaches it, and an order placed meanwhile waits for it.
        view = (await http.get(f"{stack.url('fulfillment')}/routing/stock/{sku}")).json()
        return any(
            level["location_id"] == location_id and level["available"] == on_hand for level in view.get("locations", [])
        )

    await eventually(routing_sees_it, timeout=30)
    return sku


async def test_pay_flows_through_every_service(stack: LocalStack, http: httpx.AsyncClient) -> None:
    sku = await stocked_sku(stack, http)
    async with TopicReader(stack.kafka_bootstrap, "orders.events.v1", "fulfillment.events.v1") as kafka:
        created = await http.post(stack.url("orders") + "/orders", json=new_order(sku=sku))
        assert created.status_code == 201, created.text
        order = created.json()
        order_id = order["id"]
        assert order["financial_status"] == "pending"
        assert order["line_items"][0]["id"]

        paid = await http.post(f"{stack.url('orders')}/orders/{order_id}/pay")
        assert paid.status_code == 200, paid.text
        assert paid.json()["financial_status"] == "paid"

        # orders -> Kafka
        orders_topic = "orders.events.v1"
        await eventually(lambda: kafka.types(order_id, orders_topic) == ["order.created", "order.paid"])
        paid_event = kafka.events(order_id, orders_topic)[1]
        assert paid_event["specversion"] == "1.0" and paid_event["source"] == "urn:fulfillment-platform:orders"
        assert paid_event["data"]["order"]["line_items"][0]["unit_price"] == "99.50"

        # fulfillment consumed order.paid and emitted fulfillment_order.created
        await eventually(lambda: "fulfillment_order.created" in kafka.types(order_id))
        reply = await http.get(stack.url("fulfillment") + "/fulfillment-orders", params={"order_id": order_id})
        listed = reply.json()
        assert [fo["status"] for fo in listed["items"]] == ["OPEN"]
        assert listed["items"][0]["line_items"][0]["quantity"] == 2

        # inventory recorded a reservation
        async def reservations() -> list[Any]:
            reply = await http.get(stack.url("inventory") + "/reservations", params={"order_id": order_id})
            return list(reply.json()["items"])

        reservation = (await eventually(reservations))[0]
        assert reservation["fulfillment_order_id"] == listed["items"][0]["id"]

        # orders consumed the fulfillment event: timeline (newest first) and status
        async def timeline_types() -> list[str]:
            body = (await http.get(f"{stack.url('orders')}/orders/{order_id}")).json()
            return [entry["type"] for entry in body["timeline"]]

        await eventually(lambda: _contains(timeline_types(), "fulfillment_order.created"))
        types = await timeline_types()
        assert types[-2:] == ["order.paid", "order.created"]
        assert types.index("fulfillment_order.created") < types.index("order.paid")


async def _contains(types: Any, wanted: str) -> bool:
    return wanted in await types


async def test_paying_twice_emits_one_paid_event(stack: LocalStack, http: httpx.AsyncClient) -> None:
    async with TopicReader(stack.kafka_bootstrap, "orders.events.v1") as kafka:
        order_id = (await http.post(stack.url("orders") + "/orders", json=new_order())).json()["id"]
        for _ in range(2):
            reply = await http.post(f"{stack.url('orders')}/orders/{order_id}/pay")
            assert reply.status_code == 200
        # The order's events are relayed in the order they were written: once the cancellation
        # that follows is on the topic, everything the two payments emitted is there too.
        cancel = {"refund": "none", "restock": False, "notify_customer": False, "reason": "other"}
        reply = await http.post(f"{stack.url('orders')}/orders/{order_id}/cancel", json=cancel)
        assert reply.status_code == 200, reply.text
        await eventually(lambda: "order.cancelled" in kafka.types(order_id))
        assert kafka.types(order_id).count("order.paid") == 1


async def test_malformed_message_goes_to_dlq_and_consumer_carries_on(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    async with TopicReader(stack.kafka_bootstrap, "orders.events.v1.dlq", "fulfillment.events.v1") as kafka:
        poison_key = f"poison-{uuid.uuid4()}".encode()
        await produce_raw(stack.kafka_bootstrap, "orders.events.v1", b"{not json", key=poison_key)
        bad_envelope = json.dumps({"specversion": "1.0", "id": "x", "source": "t", "type": "order.paid",
                                   "subject": "o", "data": {"order": {"id": 1}}}).encode()  # fmt: skip
        await produce_raw(stack.kafka_bootstrap, "orders.events.v1", bad_envelope, key=poison_key)

        def dead_letters() -> list[dict[str, str]]:
            """Fulfillment's dead letters for these messages (every consumer group of the topic
            dead-letters its own copy), in the order it met them."""
            found = []
            for record in kafka.records:
                headers = {k: v.decode() for k, v in record.headers}
                if record.key == poison_key and headers.get("x-dlq-consumer-group") == "fulfillment":
                    found.append(headers)
            return found

        letters = await eventually(lambda: len(dead_letters()) >= 2 and dead_letters())
        assert [h["x-dlq-reason"] for h in letters] == ["malformed", "malformed"]
        assert "not a CloudEvents 1.0 envelope" in letters[0]["x-dlq-error"]
        assert "order.paid data is invalid" in letters[1]["x-dlq-error"]
        assert letters[1]["x-dlq-original-topic"] == "orders.events.v1"

        # and the consumer carries on: a good order still flows through fulfillment
        order_id = (await http.post(stack.url("orders") + "/orders", json=new_order(paid=True))).json()["id"]
        await eventually(lambda: "fulfillment_order.created" in [e["type"] for e in kafka.events(order_id)])


async def test_metrics_show_faststream_message_counts(stack: LocalStack, http: httpx.AsyncClient) -> None:
    order_id = (await http.post(stack.url("orders") + "/orders", json=new_order(paid=True))).json()["id"]

    async def timeline_has_fulfillment() -> bool:
        body = (await http.get(f"{stack.url('orders')}/orders/{order_id}")).json()
        return any(e["type"] == "fulfillment_order.created" for e in body["timeline"])

    await eventually(timeline_has_fulfillment)
    metrics = (await http.get(stack.url("orders") + "/metrics")).text
    assert 'faststream_received_messages_total{app_name="orders"' in metrics
    assert 'faststream_published_messages_total{app_name="orders"' in metrics
    assert "outbox_published_events_total" in metrics


async def test_operations_endpoints(stack: LocalStack, http: httpx.AsyncClient) -> None:
    for name in ("orders", "inventory", "fulfillment", "notifications"):
        assert (await http.get(stack.url(name) + "/healthz")).status_code == 200
        ready = await http.get(stack.url(name) + "/readyz")
        assert ready.json()["checks"] == {"mongodb": "ok", "kafka": "ok"}
        spec = (await http.get(stack.url(name) + "/asyncapi")).json()
        assert spec["asyncapi"].startswith("3.")
        assert spec["channels"], f"{name} documents no channel"
        assert (await http.get(stack.url(name) + "/docs")).status_code == 200


async def test_asyncapi_documents_what_services_publish_and_read(stack: LocalStack, http: httpx.AsyncClient) -> None:
    spec = (await http.get(stack.url("orders") + "/asyncapi")).json()
    operations = {(op["action"], op["channel"]["$ref"].split("/")[-1]) for op in spec["operations"].values()}
    assert ("send", "orders.events.v1") in operations
    assert ("send", "fulfillment.events.v1.dlq") in operations
    assert any(action == "receive" and "fulfillment.events.v1" in channel for action, channel in operations)
    paid = spec["components"]["schemas"]["order.paid"]
    assert paid["properties"]["type"]["const"] == "order.paid"
    assert paid["allOf"] == [{"$ref": "#/components/schemas/CloudEvent"}]
    envelope = spec["components"]["schemas"]["CloudEvent"]
    assert {"specversion", "id", "source", "type", "subject", "data"} <= set(envelope["properties"])
    for name, topic in (("inventory", "inventory.events.v1"), ("fulfillment", "fulfillment.requests.v1"),
                        ("notifications", "notifications.events.v1")):  # fmt: skip
        channels = (await http.get(stack.url(name) + "/asyncapi")).json()["channels"]
        assert topic in channels, f"{name} does not document {topic}"
