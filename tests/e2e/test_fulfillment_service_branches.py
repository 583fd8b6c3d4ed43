"""Issue 11: every branch of the fulfillment-service workflows end to end, over HTTP and Kafka, each
ending with the order's display status and the stock as the merchant expects. The service answers
over Kafka (signed, as in test_fulfillment_service_workflow) or over HTTP with its own token,
scoped `fulfillment_service:<id>`; both channels apply the same rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop, physical
from tests.e2e.test_fulfillment_service_workflow import REQUESTS, RESPONSES, ThirdParty, fo_where
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e


class Service:
    """A third-party fulfillment service calling the HTTP API with its own token."""

    def __init__(self, shop: Shop, service_id: str) -> None:
        assert shop.stack.auth is not None
        self.shop = shop
        self.id = service_id
        token = shop.stack.auth.mint(service_id, [f"fulfillment_service:{service_id}"])
        self.headers = {"authorization": f"Bearer {token}"}

    async def post(self, fo_id: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        url = f"{self.shop.stack.url('fulfillment')}/fulfillment-orders/{fo_id}/{path}"
        return await self.shop.http.post(url, json=body, headers={**self.headers, **headers})

    async def ok(self, fo_id: str, path: str, body: Any = None) -> dict[str, Any]:
        reply = await self.post(fo_id, path, body)
        assert reply.status_code in (200, 201), reply.text
        return dict(reply.json())


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


@pytest.fixture
async def kafka(stack: LocalStack) -> AsyncIterator[TopicReader]:
    async with TopicReader(stack.kafka_bootstrap, FULFILLMENT_TOPIC, REQUESTS, f"{RESPONSES}.dlq") as reader:
        yield reader


async def at_service(
    shop: Shop, quantity: int = 1, stock: int = 5, workflow: str = "new"
) -> tuple[Service, str, str, dict[str, Any]]:
    """A paid order at a location run by a fresh fulfillment service (manual mode: nothing is
    requested yet, the stock is reserved there): the service, its location, the sku, the fulfillment order."""
    service = Service(shop, f"3pl-{uuid.uuid4().hex[:8]}")
    location = f"{service.id}-wh"
    body = {"name": "3PL", "active": True, "fulfillment_service": service.id}
    if workflow != "new":  # the default, left out as a location saved before workflows would have it
        body["workflow"] = workflow
    reply = await shop.http.put(f"{shop.stack.url('inventory')}/locations/{location}", json=body)
    assert reply.status_code == 201, reply.text
    assert reply.json().get("workflow", "new") == workflow
    await eventually(lambda: shop._routing_knows(location), timeout=30)
    sku = shop.sku("MUG")
    await shop.stock(location, sku, stock)
    order = await shop.paid_order(physical(sku, quantity))
    (fo,) = await shop.settle(order["id"], 1)
    assert fo["location_id"] == location and fo["status"] == "OPEN" and fo.get("workflow", "new") == workflow
    return service, location, sku, fo


async def requested(shop: Shop, fo: dict[str, Any], message: str = "") -> dict[str, Any]:
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/submit-request", {"message": message})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def own_location(shop: Shop, sku: str, stock: int = 5) -> str:
    location = await shop.location("own")
    await shop.stock(location, sku, stock)
    return location


async def stock_is(shop: Shop, sku: str, location: str, **wanted: int) -> None:
    async def matches() -> bool:
        level = (await shop.levels(sku)).get(location, {})
        return all(level.get(key) == value for key, value in wanted.items())

    await eventually(matches, timeout=30)


async def moved_and_fulfilled(shop: Shop, fo: dict[str, Any], location: str) -> None:
    """The merchant moves the fulfillment order to `location` and fulfils it there."""
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/move", {"location_id": location})
    assert reply.status_code == 200, reply.text
    await fo_where(shop, fo["order_id"], id=fo["id"], location_id=location, reservation_status="RESERVED")
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {"notify_customer": False})
    assert reply.status_code == 201, reply.text
    await shop.display_status(fo["order_id"], "FULFILLED")


def sent_to(kafka: TopicReader, service: str, fo_id: str) -> list[str]:
    """The types of what the fulfillment service was sent about this fulfillment order."""
    types = []
    for record in kafka.records:
        if record.topic == REQUESTS and record.key == service.encode():
            event = json.loads(record.value or b"{}")
            if event["data"]["fulfillment_order"]["id"] == fo_id:
                types.append(event["type"])
    return types


# --- the defects -----------------------------------------------------------------------------


async def test_cancellation_accepted_strands_the_order_no_more(shop: Shop, kafka: TopicReader) -> None:
    """Request, accept, request-cancellation, cancellation_accepted (over Kafka): the order goes
    back to unfulfilled with its lines in an OPEN fulfillment order the merchant can fulfil, move
    or request again; here they move it to their own location and fulfil it, and the stock follows."""
    service, location, sku, fo = await at_service(shop)
    acme = ThirdParty(shop, kafka, service.id)
    await requested(shop, fo)
    await acme.answer("fulfillment_service.request_accepted", fo)
    await fo_where(shop, fo["order_id"], request_status="ACCEPTED")
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/request-cancellation", {"message": "buyer called"})
    assert reply.status_code == 200, reply.text
    await acme.answer("fulfillment_service.cancellation_accepted", fo, message="stopped picking")

    back = await fo_where(shop, fo["order_id"], request_status="CANCELLATION_ACCEPTED")
    assert back["status"] == "OPEN"
    await shop.display_status(fo["order_id"], "UNFULFILLED")
    await stock_is(shop, sku, location, reserved=1)  # still held for it, at the service's location
    mine = await own_location(shop, sku)
    await moved_and_fulfilled(shop, fo, mine)
    await stock_is(shop, sku, location, reserved=0, on_hand=5)
    await stock_is(shop, sku, mine, reserved=0, on_hand=4)


async def test_incomplete_is_a_dead_end_no_more_moved_fulfilled_and_the_stock_follows(
    shop: Shop, kafka: TopicReader
) -> None:
    """The service (over Kafka) accepts, ships one of two, then cannot complete: INCOMPLETE, and
    fulfil, move, submit all answered 409 with the unit kept reserved. Now the merchant moves it
    to a location they manage (the reservation follows) and fulfils the rest there."""
    service, location, sku, fo = await at_service(shop, quantity=2)
    acme = ThirdParty(shop, kafka, service.id)
    await requested(shop, fo)
    await acme.answer("fulfillment_service.request_accepted", fo, message="on it")
    line = fo["line_items"][0]["line_item_id"]
    partial: dict[str, Any] = {"line_items": [{"line_item_id": line, "quantity": 1}], "tracking": {"numbers": ["T-1"]}}
    await acme.answer("fulfillment_service.shipped", fo, **partial)
    await acme.answer("fulfillment_service.cannot_complete", fo, message="warehouse flooded")
    gave_up = await fo_where(shop, fo["order_id"], status="INCOMPLETE")
    assert gave_up["request_status"] == "CLOSED"
    await stock_is(shop, sku, location, reserved=1, on_hand=4)

    mine = await own_location(shop, sku)
    await moved_and_fulfilled(shop, fo, mine)
    await stock_is(shop, sku, location, reserved=0, on_hand=4)
    await stock_is(shop, sku, mine, reserved=0, on_hand=4)


async def test_incomplete_can_be_requested_again(shop: Shop, kafka: TopicReader) -> None:
    service, location, sku, fo = await at_service(shop)
    acme = ThirdParty(shop, kafka, service.id)
    await requested(shop, fo)
    await acme.answer("fulfillment_service.request_accepted", fo)
    await acme.answer("fulfillment_service.cannot_complete", fo)
    await fo_where(shop, fo["order_id"], status="INCOMPLETE")
    again = await requested(shop, fo, "please try again")
    assert (again["status"], again["request_status"]) == ("OPEN", "SUBMITTED")
    await acme.answer("fulfillment_service.request_accepted", fo)
    await fo_where(shop, fo["order_id"], request_status="ACCEPTED")
    await acme.answer("fulfillment_service.shipped", fo)
    await shop.display_status(fo["order_id"], "FULFILLED")
    await stock_is(shop, sku, location, reserved=0, on_hand=4)


async def test_request_declined_sticks_no_more_after_a_move_to_the_merchants_own_location(
    shop: Shop, kafka: TopicReader
) -> None:
    """Rejected (over Kafka), then moved to the merchant's own location: the order shows
    UNFULFILLED (not REQUEST_DECLINED) and is listed under ?fulfillment_status=UNFULFILLED."""
    service, _, sku, fo = await at_service(shop)
    await requested(shop, fo)
    await ThirdParty(shop, kafka, service.id).answer(
        "fulfillment_service.request_rejected", fo, reason="INCORRECT_ADDRESS", message="no such street"
    )
    await shop.display_status(fo["order_id"], "REQUEST_DECLINED")
    mine = await own_location(shop, sku)
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/move", {"location_id": mine})
    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["request_status"]) == ("OPEN", "UNSUBMITTED")
    await shop.display_status(fo["order_id"], "UNFULFILLED")
    assert fo["order_id"] in await listed(shop, fulfillment_status="UNFULFILLED")
    await moved_and_fulfilled_here(shop, fo, mine)


async def test_a_wrong_reason_no_more_when_moving_an_accepted_fulfillment_order(shop: Shop, kafka: TopicReader) -> None:
    """Moving an accepted fulfillment order was refused with "part of it has already shipped"
    when nothing had shipped: the refusal says the service has it and what to do."""
    service, _, sku, fo = await at_service(shop)
    await requested(shop, fo)
    await ThirdParty(shop, kafka, service.id).answer("fulfillment_service.request_accepted", fo)
    await fo_where(shop, fo["order_id"], request_status="ACCEPTED")
    mine = await own_location(shop, sku)
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/move", {"location_id": mine})
    assert reply.status_code == 409, reply.text
    message = reply.json()["error"]["message"]
    assert "already shipped" not in message and "request a cancellation first" in message, message
    await shop.display_status(fo["order_id"], "IN_PROGRESS")


async def listed(shop: Shop, **params: str) -> set[str]:
    """Every order id the orders listing gives for these filters (all pages)."""
    found: set[str] = set()
    after: str | None = None
    for _ in range(200):
        query = {**params, "limit": "250", **({"after": after} if after else {})}
        page = (await shop.http.get(f"{shop.stack.url('orders')}/orders", params=query)).json()
        found |= {order["id"] for order in page["items"]}
        after = page.get("next_cursor")
        if not after:
            break
    return found


async def moved_and_fulfilled_here(shop: Shop, fo: dict[str, Any], location: str) -> None:
    await fo_where(shop, fo["order_id"], id=fo["id"], location_id=location, reservation_status="RESERVED")
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})
    assert reply.status_code == 201, reply.text
    await shop.display_status(fo["order_id"], "FULFILLED")
