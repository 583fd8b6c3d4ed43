"""Issue 12 on the orders service, over HTTP on the whole stack: order numbers (with two orders
replicas), comments, the waiting flag, custom statuses, the warehouse status, order search and
order editing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from deploy.local_stack import LocalStack
from shared.catalog import FulfillmentOrderChanged, FulfillmentOrderSnapshot
from shared.events import new_event
from tests.conftest import eventually
from tests.kafka_tools import produce_raw
from tests.unit.test_order_rules import order_json


def an_order(**changes: Any) -> dict[str, Any]:
    body = order_json(**changes)
    body.pop("financial_status")
    return {**body, **({"financial_status": changes["financial_status"]} if "financial_status" in changes else {})}


async def test_200_concurrent_orders_on_two_replicas_get_200_distinct_consecutive_numbers(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """Issue 12: "200 concurrent orders get 200 distinct consecutive numbers with two orders replicas"."""
    replica = stack.start_replica("orders", "orders-2")
    try:
        stack.wait_until_ready()
        urls = [stack.url("orders"), stack.url("orders-2")]
        gate = asyncio.Semaphore(40)

        async def place(i: int) -> int:
            async with gate:
                reply = await http.post(urls[i % 2] + "/orders", json=an_order(), timeout=60)
            assert reply.status_code == 201, reply.text
            number = reply.json()["number"]
            assert isinstance(number, int)
            return number

        numbers = await asyncio.gather(*(place(i) for i in range(200)))
        assert len(set(numbers)) == 200, "distinct"
        assert sorted(numbers) == list(range(min(numbers), min(numbers) + 200)), "consecutive: no gap"
    finally:
        stack.stop_child(replica)
        del stack.service_ports["orders-2"]


async def test_comments_waiting_and_custom_statuses_renamed_everywhere_and_found_by_search(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    orders = stack.url("orders")
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    placed = (
        await http.post(orders + "/orders", json=an_order(customer={"email": email, "name": "Greta Garbo"}))
    ).json()
    order_id, number = placed["id"], placed["number"]
    assert placed["warehouse_status"] == "order" and placed["waiting"] is False

    waiting = await http.put(f"{orders}/orders/{order_id}/waiting", json={"waiting": True})
    assert waiting.status_code == 200 and waiting.json()["waiting"] is True
    assert waiting.json()["timeline"][0]["type"] == "order.waiting_changed"
    assert (await http.put(f"{orders}/orders/{order_id}/waiting", json={"waiting": 1})).status_code == 422

    word = f"fragile{uuid.uuid4().hex[:6]}"
    commented = await http.post(f"{orders}/orders/{order_id}/comments", json={"text": f"Wrap it: {word}!"})
    assert commented.status_code == 201 and commented.json()["comments"][0]["text"] == f"Wrap it: {word}!"

    code = f"vip-{uuid.uuid4().hex[:6]}"
    assert (await http.post(orders + "/custom-statuses", json={"code": code, "name": "VIP"})).status_code == 201
    assert (await http.post(orders + "/custom-statuses", json={"code": code, "name": "Other"})).status_code == 409
    unknown = await http.put(f"{orders}/orders/{order_id}/custom-status", json={"code": "no-such"})
    assert unknown.status_code == 404
    marked = await http.put(f"{orders}/orders/{order_id}/custom-status", json={"code": code})
    assert marked.json()["custom_status"] == {"code": code, "name": "VIP"}
    renamed = await http.put(f"{orders}/custom-statuses/{code}", json={"code": code, "name": "Very important"})
    assert renamed.status_code == 200
    shown = (await http.get(f"{orders}/orders/{order_id}")).json()
    assert shown["custom_status"] == {"code": code, "name": "Very important"}, "renamed on the order too"

    for query in ({"custom_status": code}, {"q": word}, {"q": f"#{number}"}, {"q": email}, {"q": f"greta {word}"},
                  {"q": "MUG-1", "custom_status": code}, {"custom_status": code, "warehouse_status": "order"},
                  {"q": email, "total_min": "199", "total_max": "199"}):  # fmt: skip
        found = (await http.get(orders + "/orders", params=query)).json()
        assert [o["id"] for o in found["items"]] == [order_id], query
    for query in ({"q": email, "total_min": "200"}, {"custom_status": code, "warehouse_status": "packing"},
                  {"q": email, "created_to": "2020-01-01T00:00:00Z"}):  # fmt: skip
        assert (await http.get(orders + "/orders", params=query)).json()["items"] == [], query
    refused = await http.get(orders + "/orders", params={"q": word, "sort": "fulfill_by"})
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "query.sort"


async def test_a_draft_has_no_customer_and_shows_as_draft(stack: LocalStack, http: httpx.AsyncClient) -> None:
    body = an_order()
    del body["customer"]
    draft = await http.post(stack.url("orders") + "/orders", json=body)
    assert draft.status_code == 201 and draft.json()["warehouse_status"] == "draft"
    listed = await http.get(stack.url("orders") + "/orders", params={"warehouse_status": "draft", "limit": 250})
    assert draft.json()["id"] in {o["id"] for o in listed.json()["items"]}


async def ship(stack: LocalStack, order: dict[str, Any], line: dict[str, Any], shipped: int) -> None:
    """Fulfillment says (as its events do) that `shipped` units of `line` left the warehouse."""
    fo = FulfillmentOrderSnapshot.model_validate({
        "id": f"fo-{order['id']}", "order_id": order["id"], "location_id": "wh-1", "status": "IN_PROGRESS",
        "line_items": [{"line_item_id": line["id"], "sku": line["sku"], "quantity": line["quantity"],
                        "fulfilled_quantity": shipped}],
        "created_at": order["created_at"], "updated_at": order["created_at"],
    })  # fmt: skip
    event = new_event(
        "fulfillment", "fulfillment_order.opened", order["id"], FulfillmentOrderChanged(fulfillment_order=fo)
    )
    await produce_raw(stack.kafka_bootstrap, "fulfillment.events.v1", event.to_bytes(), order["id"].encode())


async def test_editing_an_order_and_refusing_an_edit_that_touches_what_shipped(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    orders = stack.url("orders")
    two_lines = an_order(line_items=[
        {"sku": "MUG-1", "title": "Mug", "quantity": 1, "unit_price": "10"},
        {"sku": "TEA", "title": "Tea", "quantity": 1, "unit_price": "5"},
    ])  # fmt: skip
    order = (await http.post(orders + "/orders", json=two_lines)).json()
    mug, tea = order["line_items"]
    edited = await http.patch(f"{orders}/orders/{order['id']}", json={"line_items": [
        {"id": mug["id"], "sku": "MUG-1", "title": "Mug", "quantity": 3, "unit_price": "10"},
        {"sku": "TEA", "title": "Tea", "quantity": 1, "unit_price": "5"},
        {"sku": "CUP", "title": "Cup", "quantity": 2, "unit_price": "4"},
    ]})  # fmt: skip
    assert edited.status_code == 200, edited.text
    entry = edited.json()["timeline"][0]
    assert entry["type"] == "order.edited"
    assert entry["details"]["changes"] == ["MUG-1 quantity 1 -> 3", "CUP added (quantity 2)"]
    assert [(line["sku"], line["quantity"]) for line in edited.json()["line_items"]] == [
        ("MUG-1", 3), ("TEA", 1), ("CUP", 2)]  # fmt: skip
    cup_found = await http.get(orders + "/orders", params={"q": "cup", "created_from": order["created_at"]})
    assert order["id"] in {o["id"] for o in cup_found.json()["items"]}

    await ship(stack, order, tea, shipped=1)

    async def packing() -> bool:
        shown: dict[str, Any] = (await http.get(f"{orders}/orders/{order['id']}")).json()
        return bool(shown["warehouse_status"] == "packing")

    await eventually(packing, timeout=30)
    refused = await http.patch(f"{orders}/orders/{order['id']}", json={"line_items": [
        {"id": mug["id"], "sku": "MUG-1", "title": "Mug", "quantity": 3, "unit_price": "10"},
    ]})  # fmt: skip
    assert refused.status_code == 409 and "TEA has shipped" in refused.json()["error"]["message"]
    moved = await http.patch(f"{orders}/orders/{order['id']}", json={"shipping_address": {
        "address1": "Elsewhere 2", "city": "Malmö", "country_code": "SE"}})  # fmt: skip
    assert moved.status_code == 409
    nothing = await http.patch(f"{orders}/orders/{order['id']}", json={})
    assert nothing.status_code == 422
