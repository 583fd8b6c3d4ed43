"""Bad input on every orders endpoint: a 4xx that says what is wrong, and nothing written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.e2e.test_orders_flows import CANCEL, ORDERS_TOPIC, create, new_order, order_types
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
JSON = {"content-type": "application/json"}


async def order_count(http: httpx.AsyncClient, stack: LocalStack) -> int:
    return int((await http.get(stack.url("orders") + "/orders", params={"limit": 1})).json()["total"])


def error(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return dict(body["error"])


def fields(reply: httpx.Response) -> list[str]:
    return [d["field"] for d in error(reply, 422)["details"]]


def line(**changes: Any) -> dict[str, Any]:
    return {"sku": "MUG-1", "title": "Mug", "quantity": 1, "unit_price": "9.90", **changes}


DIGITAL = {"requires_shipping": False, "digital_asset_url": "https://files.example.com/gift-card/abc"}

BAD_ORDERS: list[tuple[Any, str]] = [
    (new_order(line_items=[line(quantity=0)]), "line_items.0.quantity"),
    (new_order(line_items=[line(quantity="two")]), "line_items.0.quantity"),
    (new_order(line_items=[line(unit_price="-1")]), "line_items.0.unit_price"),
    (new_order(line_items=[line(unit_price="1.2.3")]), "line_items.0.unit_price"),
    (new_order(customer={"email": "ada-at-example.com", "name": "Ada"}), "customer.email"),
    (new_order(line_items=[]), "line_items"),
    (new_order(line_items=[line(requires_shipping=True, digital_asset_url=DIGITAL["digital_asset_url"])]),
     "line_items.0.requires_shipping"),
    (new_order(line_items=[line(requires_shipping=False)], shipping_address=None), "line_items.0.digital_asset_url"),
    (new_order(line_items=[line()], shipping_address=None), "shipping_address"),
    (new_order(currency="SKR"), "currency"),
    (new_order(currency="sek"), "currency"),
    (new_order(line_items=[line(title="x" * 100_000)]), "line_items.0.title"),
    (new_order(line_items=[line()] * 251), "line_items"),
    (new_order(discount="100%"), "discount"),
    ({**new_order(), "customer": "Ada"}, "customer"),
    ([new_order()], "body"),
    ("order", "body"),
    (None, "body"),
]  # fmt: skip


async def test_creating_a_bad_order_names_the_field_and_writes_nothing(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    url = stack.url("orders") + "/orders"
    before = await order_count(http, stack)
    for body, field in BAD_ORDERS:
        reply = await http.post(url, content=json.dumps(body), headers=JSON)
        assert field in fields(reply), (field, reply.text)
        assert error(reply, 422)["code"] == "invalid_request"

    malformed = await http.post(url, content=b'{"customer": ', headers=JSON)
    assert fields(malformed) == ["body"] and "not valid JSON" in malformed.json()["error"]["details"][0]["reason"]
    not_utf8 = await http.post(url, content=b"\xff\xfe\x00", headers=JSON)
    assert fields(not_utf8) == ["body"] and "parsing the body" in not_utf8.json()["error"]["details"][0]["reason"]
    huge = await http.post(url, content=b'{"customer": "' + b"x" * 2_000_000 + b'"}', headers=JSON)
    assert error(huge, 413)["code"] == "payload_too_large"

    assert await order_count(http, stack) == before


async def test_a_digital_only_order_needs_no_address(stack: LocalStack, http: httpx.AsyncClient) -> None:
    body = new_order(line_items=[line(**DIGITAL)], shipping_address=None)
    reply = await http.post(stack.url("orders") + "/orders", json=body)
    assert reply.status_code == 201, reply.text
    assert reply.json()["line_items"][0]["digital_asset_url"] == DIGITAL["digital_asset_url"]


@pytest.mark.parametrize("order_id", [UNKNOWN_ID, "not-a-uuid", "1' OR '1'='1", "x" * 5000, UNKNOWN_ID.upper()])
async def test_unknown_or_malformed_order_ids_are_not_found_on_every_endpoint(
    stack: LocalStack, http: httpx.AsyncClient, order_id: str
) -> None:
    url = f"{stack.url('orders')}/orders/{order_id}"
    before = await order_count(http, stack)
    for reply in (
        await http.get(url),
        await http.post(url + "/pay"),
        await http.post(url + "/cancel", json=CANCEL),
        await http.post(url + "/post-purchase/complete"),
    ):
        assert error(reply, 404)["code"] == "not_found"
        assert len(reply.json()["error"]["message"]) < 200
    assert await order_count(http, stack) == before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"financial_status": "PAID"}, "query.financial_status"),
        ({"financial_status": "bogus"}, "query.financial_status"),
        ({"fulfillment_status": "shipped"}, "query.fulfillment_status"),
        ({"sort": "price"}, "query.sort"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 251}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"offset": "9" * 400}, "query.offset"),
        ({"fulfilment_status": "FULFILLED"}, "query.fulfilment_status"),
    ],
)
async def test_bad_list_parameters_are_named(
    stack: LocalStack, http: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    reply = await http.get(stack.url("orders") + "/orders", params=params)
    assert fields(reply) == [field]


BAD_CANCELS: list[tuple[Any, str]] = [
    ({**CANCEL, "refund": "yesterday"}, "refund"),
    ({**CANCEL, "reason": "bored"}, "reason"),
    ({**CANCEL, "restock": "maybe"}, "restock"),
    ({**CANCEL, "notify_customer": "please"}, "notify_customer"),
    ({**CANCEL, "staff_note": "x" * 100_000}, "staff_note"),
    ({"refund": "now"}, "restock"),
    ({}, "refund"),
    (["now"], "body"),
    (None, "body"),
]


async def test_bad_cancel_requests_leave_the_order_alone(stack: LocalStack, http: httpx.AsyncClient) -> None:
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = await create(http, stack, paid=True)
        url = f"{stack.url('orders')}/orders/{order['id']}"
        await eventually(lambda: "order.paid" in order_types(kafka, order["id"]))
        for body, field in BAD_CANCELS:
            reply = await http.post(url + "/cancel", content=json.dumps(body), headers=JSON)
            assert field in fields(reply), (field, reply.text)
        assert fields(await http.post(url + "/cancel", content=b"{", headers=JSON)) == ["body"]
        after = (await http.get(url)).json()
        assert after["cancelled_at"] is None and after["financial_status"] == "paid"

        # Then a good one: the only cancellation on Kafka is the good one.
        good = await http.post(url + "/cancel", json={**CANCEL, "refund": "none"})
        assert good.status_code == 200, good.text
        await eventually(lambda: "order.cancelled" in order_types(kafka, order["id"]))
        assert order_types(kafka, order["id"]) == ["order.created", "order.paid", "order.cancelled"]
        cancelled = next(e for e in kafka.events(order["id"], ORDERS_TOPIC) if e["type"] == "order.cancelled")
        assert cancelled["data"]["refund"] == "none" and cancelled["data"]["refunded"] is False


async def test_pay_and_post_purchase_conflicts_say_why_and_emit_nothing(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = await create(http, stack)
        url = f"{stack.url('orders')}/orders/{order['id']}"
        no_offer = await http.post(url + "/post-purchase/complete")
        assert "no post-purchase offer pending" in error(no_offer, 409)["message"]
        for _ in range(2):  # paying twice: the second is a no-op
            paid = await http.post(url + "/pay", json={"ignored": True})
            assert paid.status_code == 200 and paid.json()["financial_status"] == "paid"
        assert (await http.post(url + "/cancel", json=CANCEL)).status_code == 200
        assert "cancelled" in error(await http.post(url + "/pay"), 409)["message"]

        await eventually(lambda: "order.cancelled" in order_types(kafka, order["id"]))
        assert order_types(kafka, order["id"]) == ["order.created", "order.paid", "order.cancelled"]
