"""Issue 11: the HTTP API for fulfillment services (each call with the service's own token, the same
rules as its Kafka answers), and the merchant's branches of both workflows: withdraw a request,
cancellation rejected, reset to unfulfilled, mark as fulfilled, legacy progress and completion,
legacy cancel refused. Each ends with the order's display status and the stock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop
from tests.e2e.test_fulfillment_service_branches import (
    Service,
    at_service,
    moved_and_fulfilled,
    own_location,
    requested,
    sent_to,
    stock_is,
)
from tests.e2e.test_fulfillment_service_workflow import REQUESTS, RESPONSES
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


@pytest.fixture
async def kafka(stack: LocalStack) -> AsyncIterator[TopicReader]:
    async with TopicReader(stack.kafka_bootstrap, FULFILLMENT_TOPIC, REQUESTS, f"{RESPONSES}.dlq") as reader:
        yield reader


async def test_http_api_for_fulfillment_services_each_call_with_its_own_token(shop: Shop) -> None:
    service, location, sku, fo = await at_service(shop)
    await requested(shop, fo, "fragile: pack well")

    as_merchant = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillment-request/accept", {})
    assert as_merchant.status_code == 403, as_merchant.text  # the service answers, not the merchant
    other = Service(shop, f"other-{uuid.uuid4().hex[:8]}")
    refused = await other.post(fo["id"], "fulfillment-request/accept", {"message": "mine now"})
    assert refused.status_code == 403, refused.text  # another service's fulfillment order
    assert (await service.post("no-such-fo", "fulfillment-request/accept")).status_code == 404
    bad = await service.post(fo["id"], "fulfillment-request/reject", {"reason": "BORED", "message": "x"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["details"][0]["field"].endswith("reason")
    assert (await service.post(fo["id"], "progress", {"message": "x"})).status_code == 409  # legacy only

    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await service.post(fo["id"], "fulfillment-request/accept", {"message": "on it"}, **key)
    again = await service.post(fo["id"], "fulfillment-request/accept", {"message": "on it"}, **key)
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert (first.json()["status"], first.json()["request_status"]) == ("IN_PROGRESS", "ACCEPTED")
    assert [(m["by"], m["message"]) for m in first.json()["messages"]] == [
        ("merchant", "fragile: pack well"),
        ("fulfillment_service", "on it"),
    ]
    await shop.display_status(fo["order_id"], "IN_PROGRESS")

    url = f"{shop.stack.url('fulfillment')}/fulfillment-orders"
    assigned = await shop.http.get(url, params={"assigned": "true"}, headers=service.headers)
    assert assigned.status_code == 200, assigned.text
    assert [item["id"] for item in assigned.json()["items"]] == [fo["id"]]
    assert (await shop.http.get(url, params={"assigned": "true"})).status_code == 422  # no service's token
    theirs = await shop.http.get(url, params={"assigned": "true"}, headers=other.headers)
    assert theirs.json()["items"] == []

    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/request-cancellation", {"message": "buyer called"})
    assert reply.status_code == 200, reply.text
    kept = await service.ok(fo["id"], "cancellation-request/reject", {"message": "already packed"})
    assert (kept["status"], kept["request_status"]) == ("IN_PROGRESS", "CANCELLATION_REJECTED")
    shipped = await service.post(fo["id"], "fulfillments", {"tracking": {"numbers": ["ACME-7"]}})
    assert shipped.status_code == 201, shipped.text
    await shop.display_status(fo["order_id"], "FULFILLED")
    await stock_is(shop, sku, location, reserved=0, on_hand=4)


async def test_withdraw_a_request_not_yet_accepted_and_the_service_is_told(shop: Shop, kafka: TopicReader) -> None:
    service, location, sku, fo = await at_service(shop)
    await requested(shop, fo)
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/withdraw-request", {"message": "wrong warehouse"})
    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["request_status"]) == ("OPEN", "UNSUBMITTED")
    await eventually(lambda: "fulfillment_service.request_withdrawn" in sent_to(kafka, service.id, fo["id"]))
    late = await service.post(fo["id"], "fulfillment-request/accept", {})
    assert late.status_code == 409, late.text
    await shop.display_status(fo["order_id"], "UNFULFILLED")
    await stock_is(shop, sku, location, reserved=1)
    mine = await own_location(shop, sku)
    await moved_and_fulfilled(shop, fo, mine)  # change location to one the merchant manages, then fulfil
    await stock_is(shop, sku, location, reserved=0, on_hand=5)
    await stock_is(shop, sku, mine, reserved=0, on_hand=4)


async def test_reset_to_unfulfilled_once_a_cancellation_was_requested(shop: Shop, kafka: TopicReader) -> None:
    service, location, sku, fo = await at_service(shop)
    await requested(shop, fo)
    await service.ok(fo["id"], "fulfillment-request/accept")
    early = await shop.post(f"/fulfillment-orders/{fo['id']}/reset-to-unfulfilled", {"note": "now"})
    assert early.status_code == 409, early.text  # no cancellation requested yet
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/request-cancellation", {"message": "please stop"})
    assert reply.status_code == 200, reply.text
    reset = await shop.post(f"/fulfillment-orders/{fo['id']}/reset-to-unfulfilled", {"note": "they went silent"})
    assert reset.status_code == 200, reset.text
    assert (reset.json()["status"], reset.json()["request_status"]) == ("OPEN", "UNSUBMITTED")

    def warned() -> dict[str, object] | None:
        found = [
            e
            for e in kafka.events(fo["order_id"], FULFILLMENT_TOPIC)
            if e["type"] == "fulfillment_order.reset_to_unfulfilled"
        ]
        return found[0]["data"] if found else None

    data = await eventually(warned, timeout=30)
    assert "may still ship" in str(data["warning"]) and "they went silent" in str(data["reason"])
    await shop.display_status(fo["order_id"], "UNFULFILLED")

    async def on_the_timeline() -> bool:
        order = await shop.order(fo["order_id"])
        return any(entry["type"] == "fulfillment_order.reset_to_unfulfilled" for entry in order["timeline"])

    await eventually(on_the_timeline, timeout=30)
    await stock_is(shop, sku, location, reserved=1)
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})  # mark as fulfilled, here
    assert reply.status_code == 201, reply.text
    await shop.display_status(fo["order_id"], "FULFILLED")
    await stock_is(shop, sku, location, reserved=0, on_hand=4)


async def test_mark_as_fulfilled_at_a_service_location_sends_nothing_to_the_service(
    shop: Shop, kafka: TopicReader
) -> None:
    service, location, sku, fo = await at_service(shop)
    body = {"tracking": {"numbers": ["OWN-1"], "company": "Posten"}, "notify_customer": True}
    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", body)
    assert reply.status_code == 201, reply.text
    assert reply.json()["fulfillment_order"]["request_status"] == "UNSUBMITTED"
    await shop.display_status(fo["order_id"], "FULFILLED")
    await stock_is(shop, sku, location, reserved=0, on_hand=4)
    await eventually(lambda: "fulfillment.created" in kafka.types(fo["order_id"], FULFILLMENT_TOPIC))
    assert sent_to(kafka, service.id, fo["id"]) == []


async def test_legacy_request_goes_straight_to_in_progress_then_progress_and_completion(shop: Shop) -> None:
    service, location, sku, fo = await at_service(shop, workflow="legacy")
    taken = await requested(shop, fo, "gift wrap")
    assert (taken["status"], taken["request_status"]) == ("IN_PROGRESS", "ACCEPTED")  # no accept step
    await shop.display_status(fo["order_id"], "IN_PROGRESS")
    await service.ok(fo["id"], "progress", {"message": "picked"})
    progressed = await service.ok(fo["id"], "progress", {"message": "packed"})
    assert [m["message"] for m in progressed["messages"]] == ["gift wrap", "picked", "packed"]
    shipped = await service.post(fo["id"], "fulfillments", {"tracking": {"numbers": ["L-1"]}})
    assert shipped.status_code == 201, shipped.text
    assert shipped.json()["fulfillment_order"]["status"] == "CLOSED"
    await shop.display_status(fo["order_id"], "FULFILLED")
    await stock_is(shop, sku, location, reserved=0, on_hand=4)


async def test_legacy_request_cannot_be_cancelled_from_here_but_an_unrequested_order_can(shop: Shop) -> None:
    _, location, sku, fo = await at_service(shop, workflow="legacy", stock=5)
    await requested(shop, fo)
    for path in ("request-cancellation", "withdraw-request"):
        reply = await shop.post(f"/fulfillment-orders/{fo['id']}/{path}", {"message": "stop"})
        assert reply.status_code == 409, reply.text
        assert "contact the fulfillment service" in reply.json()["error"]["message"]
    await shop.display_status(fo["order_id"], "IN_PROGRESS")
    cancel = {"refund": "none", "restock": True, "notify_customer": False, "reason": "customer"}
    refused = await shop.http.post(f"{shop.stack.url('orders')}/orders/{fo['order_id']}/cancel", json=cancel)
    assert refused.status_code == 409, refused.text
    assert "contact the fulfillment service" in refused.json()["error"]["message"]
    await stock_is(shop, sku, location, reserved=1)

    nothing_requested = await shop.paid_order({"sku": sku, "title": sku, "quantity": 1, "unit_price": "10.00"})
    await shop.settle(nothing_requested["id"], 1)
    reply = await shop.http.post(f"{shop.stack.url('orders')}/orders/{nothing_requested['id']}/cancel", json=cancel)
    assert reply.status_code == 200, reply.text

    async def released() -> bool:
        return not await shop.live(nothing_requested["id"])

    await eventually(released, timeout=30)
    await stock_is(shop, sku, location, reserved=1, on_hand=5)  # only the requested order's unit
