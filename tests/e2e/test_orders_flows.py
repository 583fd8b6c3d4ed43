"""Orders over HTTP and Kafka: paying, cancelling (with and without refund), post-purchase,
and a fully fulfilled order that can no longer be cancelled."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from shared.catalog import FulfillmentOrderChanged
from shared.events import new_event
from tests.conftest import MERCHANT, eventually
from tests.e2e.test_fulfillment_flows import Shop, physical
from tests.kafka_tools import TopicReader, produce_raw

pytestmark = pytest.mark.e2e

ORDERS_TOPIC = "orders.events.v1"
ORDER_EVENTS = {"order.created", "order.paid", "order.cancelled", "order.post_purchase_completed"}


def new_order(paid: bool = False, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"},
        "shipping_address": {"name": "Ada Buyer", "address1": "Storgatan 1", "city": "Stockholm",
                             "zip": "11122", "country_code": "SE"},
        "currency": "SEK",
        "financial_status": "paid" if paid else "pending",
        "line_items": [{"sku": "MUG-1", "title": "Mug", "quantity": 2, "unit_price": "99.50"}],
    }  # fmt: skip
    body.update(changes)
    return body


CANCEL = {"refund": "now", "restock": True, "notify_customer": False, "reason": "customer"}


async def create(http: httpx.AsyncClient, stack: LocalStack, **kw: Any) -> dict[str, Any]:
    reply = await http.post(stack.url("orders") + "/orders", json=new_order(**kw))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def order_types(kafka: TopicReader, order_id: str) -> list[str]:
    """The order's own lifecycle events (status-change events depend on fulfillment's pace)."""
    return [t for t in kafka.types(order_id, ORDERS_TOPIC) if t in ORDER_EVENTS]


async def fulfillment_order_event(
    stack: LocalStack, order: dict[str, Any], event_type: str, fulfillment_order_id: str | None = None, **fields: Any
) -> None:
    """Tell the orders service about a fulfillment order, as fulfillment would."""
    now = "2030-01-01T00:00:00.000000+00:00"
    snapshot: dict[str, Any] = {
        "id": fulfillment_order_id or f"e2e-{uuid.uuid4()}", "order_id": order["id"], "location_id": "e2e-location",
        "status": "OPEN", "created_at": now, "updated_at": now,
        "line_items": [{"line_item_id": line["id"], "sku": line["sku"], "quantity": line["quantity"]}
                       for line in order["line_items"]],
    }  # fmt: skip
    snapshot.update(fields)
    data = FulfillmentOrderChanged.model_validate({"fulfillment_order": snapshot})
    event = new_event("fulfillment", event_type, order["id"], data)
    await produce_raw(stack.kafka_bootstrap, "fulfillment.events.v1", event.to_bytes(), key=order["id"].encode())


async def fulfill_everything(stack: LocalStack, http: httpx.AsyncClient, order: dict[str, Any]) -> None:
    """Close every fulfillment order the order knows (and one for its lines) fully fulfilled."""
    known = (await http.get(f"{stack.url('orders')}/orders/{order['id']}")).json()["fulfillment_orders"]
    for fo in known:
        lines = [{**line, "fulfilled_quantity": line["quantity"]} for line in fo["line_items"]]
        await fulfillment_order_event(stack, order, "fulfillment_order.closed", fo["id"], status="CLOSED",
                                      line_items=lines, updated_at="2031-01-01T00:00:00+00:00")  # fmt: skip
    if not known:
        lines = [{"line_item_id": line["id"], "sku": line["sku"], "quantity": line["quantity"],
                  "fulfilled_quantity": line["quantity"]} for line in order["line_items"]]  # fmt: skip
        await fulfillment_order_event(stack, order, "fulfillment_order.closed", status="CLOSED", line_items=lines)


async def fulfillment_status(stack: LocalStack, http: httpx.AsyncClient, order_id: str) -> str:
    return str((await http.get(f"{stack.url('orders')}/orders/{order_id}")).json()["fulfillment_status"])


async def test_cancelling_a_paid_order_with_refund_now_refunds_it(stack: LocalStack, http: httpx.AsyncClient) -> None:
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = await create(http, stack, paid=True)
        body = {"refund": "now", "restock": True, "notify_customer": True, "reason": "fraud"}
        reply = await http.post(f"{stack.url('orders')}/orders/{order['id']}/cancel", json=body)
        assert reply.status_code == 200, reply.text
        cancelled = reply.json()
        assert cancelled["financial_status"] == "refunded"
        assert cancelled["cancelled_at"] and cancelled["cancel_reason"] == "fraud"
        assert cancelled["timeline"][0]["type"] == "order.cancelled"  # newest first

        await eventually(lambda: "order.cancelled" in order_types(kafka, order["id"]))
        assert order_types(kafka, order["id"]) == ["order.created", "order.paid", "order.cancelled"]
        event = next(e for e in kafka.events(order["id"], ORDERS_TOPIC) if e["type"] == "order.cancelled")
        data = event["data"]
        assert (data["refund"], data["refunded"], data["restock"], data["notify_customer"], data["reason"]) == (
            "now", True, True, True, "fraud",
        )  # fmt: skip
        assert data["order"]["financial_status"] == "refunded"
        assert data["order"]["cancelled_at"] == cancelled["cancelled_at"]
        assert data["order"]["line_items"] == cancelled["line_items"]


async def test_cancelling_a_pending_order_voids_it_without_refund(stack: LocalStack, http: httpx.AsyncClient) -> None:
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = await create(http, stack)
        reply = await http.post(f"{stack.url('orders')}/orders/{order['id']}/cancel", json=CANCEL)
        assert reply.status_code == 200, reply.text
        assert reply.json()["financial_status"] == "voided"

        await eventually(lambda: "order.cancelled" in order_types(kafka, order["id"]))
        event = next(e for e in kafka.events(order["id"], ORDERS_TOPIC) if e["type"] == "order.cancelled")
        assert event["data"]["refund"] == "now" and event["data"]["refunded"] is False
        assert event["data"]["order"]["financial_status"] == "voided"


async def test_cancelling_a_paid_order_refund_later_keeps_it_paid(stack: LocalStack, http: httpx.AsyncClient) -> None:
    order = await create(http, stack, paid=True)
    reply = await http.post(f"{stack.url('orders')}/orders/{order['id']}/cancel", json={**CANCEL, "refund": "later"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["financial_status"] == "paid"
    assert reply.json()["cancellation"]["refunded"] is False


async def test_cancel_twice_and_pay_after_cancel_are_conflicts_that_emit_nothing(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = await create(http, stack)
        url = f"{stack.url('orders')}/orders/{order['id']}"
        assert (await http.post(url + "/cancel", json=CANCEL)).status_code == 200
        again = await http.post(url + "/cancel", json=CANCEL)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "conflict"
        assert "already cancelled" in again.json()["error"]["message"]
        pay = await http.post(url + "/pay")
        assert pay.status_code == 409 and "cancelled" in pay.json()["error"]["message"]
        assert (await http.get(url)).json()["financial_status"] == "voided"

        # A later order on the same service proves the reader caught up with what was written before it.
        marker = await create(http, stack, paid=True)
        await eventually(lambda: "order.paid" in order_types(kafka, marker["id"]))
        await eventually(lambda: "order.cancelled" in order_types(kafka, order["id"]))
        assert order_types(kafka, order["id"]) == ["order.created", "order.cancelled"]


async def test_a_fully_fulfilled_order_cannot_be_cancelled(stack: LocalStack, http: httpx.AsyncClient) -> None:
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = await create(http, stack)
        await fulfill_everything(stack, http, order)
        await eventually(lambda: _equals(fulfillment_status(stack, http, order["id"]), "FULFILLED"))
        await eventually(lambda: "order.fulfillment_status_changed" in kafka.types(order["id"], ORDERS_TOPIC))

        reply = await http.post(f"{stack.url('orders')}/orders/{order['id']}/cancel", json=CANCEL)
        assert reply.status_code == 409, reply.text
        assert "fully fulfilled" in reply.json()["error"]["message"]
        after = (await http.get(f"{stack.url('orders')}/orders/{order['id']}")).json()
        assert after["cancelled_at"] is None and after["financial_status"] == "pending"
        assert "fulfillment_order.closed" in [entry["type"] for entry in after["timeline"]]


async def test_post_purchase_completion_is_announced_once(stack: LocalStack, http: httpx.AsyncClient) -> None:
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = await create(http, stack, paid=True, post_purchase_pending=True)
        assert order["post_purchase_pending"] is True
        url = f"{stack.url('orders')}/orders/{order['id']}/post-purchase/complete"
        done = await http.post(url)
        assert done.status_code == 200, done.text
        assert done.json()["post_purchase_pending"] is False
        again = await http.post(url)
        assert again.status_code == 409 and "no post-purchase offer pending" in again.json()["error"]["message"]

        await eventually(lambda: "order.post_purchase_completed" in order_types(kafka, order["id"]))
        event = next(e for e in kafka.events(order["id"], ORDERS_TOPIC) if e["type"] == "order.post_purchase_completed")
        assert event["data"]["order"]["post_purchase_pending"] is False
        assert order_types(kafka, order["id"]).count("order.post_purchase_completed") == 1


async def test_fulfillment_events_drive_status_and_timeline_newest_first(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    order = await create(http, stack)
    fo_id = f"e2e-{uuid.uuid4()}"
    await fulfillment_order_event(stack, order, "fulfillment_order.placed_on_hold", fo_id, status="ON_HOLD",
                                  holds=[{"reason": "POST_PURCHASE_UPSELL"}])  # fmt: skip
    await eventually(lambda: _equals(fulfillment_status(stack, http, order["id"]), "PENDING"))
    await fulfillment_order_event(stack, order, "fulfillment_order.hold_released", fo_id, status="OPEN",
                                  updated_at="2030-01-02T00:00:00+00:00")  # fmt: skip
    await eventually(lambda: _equals(fulfillment_status(stack, http, order["id"]), "UNFULFILLED"))

    body = (await http.get(f"{stack.url('orders')}/orders/{order['id']}")).json()
    types = [entry["type"] for entry in body["timeline"]]
    assert types.index("fulfillment_order.hold_released") < types.index("fulfillment_order.placed_on_hold")
    assert types[-1] == "order.created"
    assert [fo["id"] for fo in body["fulfillment_orders"] if fo["id"] == fo_id] == [fo_id]


async def test_the_timeline_says_what_happened_a_hold_with_its_reason_and_note_a_shipment_with_its_tracking(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """Issue 11, "the timeline says what happened": over the whole stack, the merchant holds a
    fulfillment order with a reason and a note, releases it and ships it with a tracking number;
    GET /orders/{id} tells each in a line, with the details and who did it."""
    shop = Shop(stack, http)
    warehouse = await shop.location("warehouse")
    await shop.stock(warehouse, shop.sku("MUG"), 3)
    order = await shop.paid_order(physical(shop.sku("MUG"), 1))
    (fo,) = await shop.settle(order["id"], 1)
    hold = {"reason": "HIGH_RISK_OF_FRAUD", "note": "billing and shipping addresses differ"}
    assert (await shop.post(f"/fulfillment-orders/{fo['id']}/hold", hold)).status_code == 200
    assert (await shop.post(f"/fulfillment-orders/{fo['id']}/release-hold")).status_code == 200
    shipment = {"tracking": {"numbers": ["1Z999AA10123456784"], "company": "UPS"}, "notify_customer": False}
    assert (await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", shipment)).status_code == 201

    async def told() -> dict[str, dict[str, Any]] | None:
        entries = {entry["type"]: entry for entry in (await shop.order(order["id"]))["timeline"]}
        wanted = ("fulfillment_order.placed_on_hold", "fulfillment_order.hold_released", "fulfillment.created")
        return entries if all(kind in entries for kind in wanted) else None

    entries = await eventually(told, timeout=30)
    held = entries["fulfillment_order.placed_on_hold"]
    assert held["message"] == "Placed on hold: high risk of fraud — 'billing and shipping addresses differ'"
    assert held["details"]["hold_reason"] == "HIGH_RISK_OF_FRAUD"
    assert held["details"]["hold_note"] == "billing and shipping addresses differ"
    assert held["details"]["fulfillment_order_id"] == fo["id"] and held["details"]["location_id"] == warehouse
    assert held["actor"] == MERCHANT
    released = entries["fulfillment_order.hold_released"]
    assert released["message"] == "Hold released: high risk of fraud" and released["actor"] == MERCHANT
    shipped = entries["fulfillment.created"]
    assert shipped["message"] == f"1 item fulfilled from {warehouse}, tracking UPS 1Z999AA10123456784"
    assert shipped["details"]["tracking_numbers"] == ["1Z999AA10123456784"]
    assert shipped["details"]["tracking_company"] == "UPS" and shipped["actor"] == MERCHANT
    assert entries["order.created"]["message"] == "Order placed (paid)"
    assert all(entry["message"] for entry in entries.values()), "every entry says what happened"


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
