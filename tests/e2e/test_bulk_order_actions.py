"""Bulk actions on orders (issue 11: "bulk jobs take `order_ids` (up to 250; 251 is a 422)"),
end to end over HTTP and Kafka: each action over a mix of orders where some fail, with the
single action's reason for each failure.

- mark_unfulfilled (fulfillment): the orders' fulfillments are cancelled, the orders show
  UNFULFILLED and their stock is reserved again; one with a purchased label fails ("void the
  label"), one with nothing fulfilled fails, an unknown one is not found.
- request_fulfillment (fulfillment): each open fulfillment order at a service location goes to
  its own service (the request on fulfillment.requests.v1 with the merchant's message); with
  notify_customer false the shipment the service reports does not email the buyer; one on hold
  and one at the merchant's own location fail with the reason.
- cancel_fulfillment_requests (fulfillment): an accepted request and a submitted one are asked to
  cancel (the service is told); an order with no request fails.
- cancel_orders (orders: POST /bulk-jobs on orders): refund, restock, notify; an order already
  cancelled and a fully fulfilled one fail with the reason; announced on orders.events.v1.
- 250 order ids are accepted, 251 refused naming `order_ids`, on both services.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop, physical
from tests.e2e.test_fulfillment_service_workflow import REQUESTS, SERVICE, ThirdParty, fo_where
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

ORDERS_TOPIC = "orders.events.v1"


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


@pytest.fixture
async def kafka(stack: LocalStack) -> AsyncIterator[TopicReader]:
    async with TopicReader(stack.kafka_bootstrap, FULFILLMENT_TOPIC, ORDERS_TOPIC, REQUESTS) as reader:
        yield reader


async def run_job(shop: Shop, service: str, body: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Start a bulk job on `service` and wait for it to complete; its results by target id."""
    url = f"{shop.stack.url(service)}/bulk-jobs"
    started = await shop.http.post(url, json=body)
    assert started.status_code == 202, started.text

    async def completed() -> dict[str, Any] | None:
        job = dict((await shop.http.get(f"{url}/{started.json()['id']}")).json())
        return job if job["status"] == "COMPLETED" else None

    return dict(await eventually(completed, timeout=timeout, interval=0.25))


def by_order(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["order_id"]: result for result in job["results"]}


async def open_order(shop: Shop, location: str, sku: str) -> dict[str, Any]:
    """A paid one-line order, its fulfillment order reserved at `location` and OPEN."""
    order = await shop.paid_order(physical(sku, 1))
    (fo,) = await shop.settle(order["id"], 1)
    assert (fo["location_id"], fo["status"]) == (location, "OPEN")
    return fo


async def test_bulk_mark_unfulfilled_cancels_the_fulfillments_and_fails_a_purchased_label(shop: Shop) -> None:
    warehouse, mug = await shop.location("warehouse"), shop.sku("MUG")
    await shop.stock(warehouse, mug, 10)
    shipped, labelled, untouched = [await open_order(shop, warehouse, mug) for _ in range(4)], None, None
    shipped, labelled, untouched = shipped[:2], shipped[2], shipped[3]
    for fo in shipped:
        assert (await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})).status_code == 201
    assert (await shop.post(f"/fulfillment-orders/{labelled['id']}/fulfillments", {"label": "PURCHASED"})).is_success
    for fo in [*shipped, labelled]:
        await shop.display_status(fo["order_id"], "FULFILLED")
    unknown = str(uuid.uuid4())
    asked = [fo["order_id"] for fo in [*shipped, labelled, untouched]] + [unknown]

    job = await run_job(shop, "fulfillment", {"action": "mark_unfulfilled", "order_ids": asked})

    assert (job["total"], job["succeeded"], job["failed"]) == (5, 2, 3)
    results = by_order(job)
    assert [result["order_id"] for result in job["results"]] == asked
    for fo in shipped:
        assert results[fo["order_id"]]["status"] == "succeeded"
        (now,) = await shop.fulfillment_orders(fo["order_id"])
        assert now["status"] == "OPEN"
        assert [f["status"] for f in now["fulfillments"]] == ["CANCELLED"]
        await shop.display_status(fo["order_id"], "UNFULFILLED")
    label_error = results[labelled["order_id"]]["error"]
    assert label_error["code"] == "conflict" and "void the label before cancelling" in label_error["message"]
    (still,) = await shop.fulfillment_orders(labelled["order_id"])
    assert [f["status"] for f in still["fulfillments"]] == ["SUCCESS"]
    assert "no fulfillment to cancel" in results[untouched["order_id"]]["error"]["message"]
    assert results[unknown]["error"]["code"] == "not_found"

    async def reserved_again() -> bool:  # 2 shipped back to reserved, the labelled one stays shipped
        level = (await shop.levels(mug))[warehouse]
        return (level["on_hand"], level["reserved"]) == (9, 3)

    await eventually(reserved_again, timeout=30)


async def test_bulk_request_fulfillment_submits_to_each_service_and_can_skip_the_email(
    shop: Shop, kafka: TopicReader
) -> None:
    acme, warehouse = await shop.location("acme", fulfillment_service=SERVICE), await shop.location("warehouse")
    at_acme, at_home = shop.sku("TEA"), shop.sku("CUP")
    await shop.stock(acme, at_acme, 10)
    await shop.stock(warehouse, at_home, 10)
    requested = [await open_order(shop, acme, at_acme) for _ in range(3)]
    held = await open_order(shop, acme, at_acme)
    own = await open_order(shop, warehouse, at_home)
    assert (await shop.post(f"/fulfillment-orders/{held['id']}/hold", {"reason": "INCORRECT_ADDRESS"})).is_success
    asked = [fo["order_id"] for fo in [*requested, held, own]]

    job = await run_job(
        shop,
        "fulfillment",
        {"action": "request_fulfillment", "order_ids": asked, "notify_customer": False, "message": "gift wrap"},
    )

    assert (job["succeeded"], job["failed"]) == (3, 2)
    results = by_order(job)
    assert "ON_HOLD (INCORRECT_ADDRESS)" in results[held["order_id"]]["error"]["message"]
    assert "run by a fulfillment service" in results[own["order_id"]]["error"]["message"]
    third_party = ThirdParty(shop, kafka)
    for fo in requested:
        now = await fo_where(shop, fo["order_id"], request_status="SUBMITTED")
        assert now["notify_customer_when_shipped"] is False
        request = await third_party.request(fo["id"])
        assert request["data"]["message"] == "gift wrap"
    (still,) = await shop.fulfillment_orders(held["order_id"])
    assert still["request_status"] == "UNSUBMITTED"

    first = requested[0]
    await third_party.answer("fulfillment_service.request_accepted", first)
    await fo_where(shop, first["order_id"], request_status="ACCEPTED")
    await third_party.answer("fulfillment_service.shipped", first, tracking={"numbers": ["A-1"], "company": "Acme"})
    closed = await fo_where(shop, first["order_id"], status="CLOSED")
    assert [f["notify_customer"] for f in closed["fulfillments"]] == [False]


async def test_bulk_cancel_fulfillment_requests_withdraws_or_asks_each_service_and_fails_without_a_request(
    shop: Shop, kafka: TopicReader
) -> None:
    acme, tea = await shop.location("acme", fulfillment_service=SERVICE), shop.sku("TEA")
    await shop.stock(acme, tea, 10)
    accepted, submitted, unsubmitted = [await open_order(shop, acme, tea) for _ in range(3)]
    third_party = ThirdParty(shop, kafka)
    for fo in (accepted, submitted):
        assert (await shop.post(f"/fulfillment-orders/{fo['id']}/submit-request", {})).is_success
    await third_party.answer("fulfillment_service.request_accepted", accepted)
    await fo_where(shop, accepted["order_id"], status="IN_PROGRESS", request_status="ACCEPTED")
    await shop.display_status(accepted["order_id"], "IN_PROGRESS")
    asked = [fo["order_id"] for fo in (accepted, submitted, unsubmitted)]

    job = await run_job(
        shop, "fulfillment", {"action": "cancel_fulfillment_requests", "order_ids": asked, "message": "customer left"}
    )

    assert (job["succeeded"], job["failed"]) == (2, 1)
    results = by_order(job)
    assert "no fulfillment request in progress" in results[unsubmitted["order_id"]]["error"]["message"]
    # Accepted: the service is asked to cancel. Not answered yet: withdrawn, back with the merchant.
    await fo_where(shop, accepted["order_id"], request_status="CANCELLATION_REQUESTED")
    asked_to_cancel = await third_party.request(accepted["id"], "fulfillment_service.cancellation_requested")
    assert asked_to_cancel["data"]["message"] == "customer left"
    await fo_where(shop, submitted["order_id"], status="OPEN", request_status="UNSUBMITTED")
    withdrawn = await third_party.request(submitted["id"], "fulfillment_service.request_withdrawn")
    assert withdrawn["data"]["message"] == "customer left"


async def test_bulk_cancel_orders_on_orders_refunds_restocks_and_reports_each_failure(
    shop: Shop, kafka: TopicReader
) -> None:
    warehouse, mug = await shop.location("warehouse"), shop.sku("MUG")
    await shop.stock(warehouse, mug, 10)
    fos = [await open_order(shop, warehouse, mug) for _ in range(5)]
    cancelled_before, fulfilled = fos[3], fos[4]
    before = await shop.http.post(
        f"{shop.stack.url('orders')}/orders/{cancelled_before['order_id']}/cancel",
        json={"refund": "none", "restock": True, "reason": "other"},
    )
    assert before.status_code == 200, before.text
    assert (await shop.post(f"/fulfillment-orders/{fulfilled['id']}/fulfillments", {})).status_code == 201
    await shop.display_status(fulfilled["order_id"], "FULFILLED")
    unknown = str(uuid.uuid4())
    asked = [fo["order_id"] for fo in fos] + [unknown]

    job = await run_job(
        shop,
        "orders",
        {"action": "cancel_orders", "order_ids": asked, "refund": "now", "restock": True, "notify_customer": True,
         "reason": "customer"},
    )  # fmt: skip

    assert (job["action"], job["total"], job["succeeded"], job["failed"]) == ("cancel_orders", 6, 3, 3)
    assert job["parameters"] == {"refund": "now", "restock": True, "notify_customer": True, "reason": "customer"}
    results = by_order(job)
    assert "already cancelled" in results[cancelled_before["order_id"]]["error"]["message"]
    assert "fully fulfilled" in results[fulfilled["order_id"]]["error"]["message"]
    assert results[unknown]["error"] == {"code": "not_found", "message": f"order {unknown!r} does not exist"}
    for fo in fos[:3]:
        order = await shop.order(fo["order_id"])
        assert order["cancelled_at"] is not None
        assert (order["cancellation"]["refund"], order["cancellation"]["notify_customer"]) == ("now", True)

    async def released() -> bool:  # 3 cancelled + 1 cancelled before: reserved for the fulfilled one only
        level = (await shop.levels(mug))[warehouse]
        return (level["on_hand"], level["reserved"]) == (9, 0)

    await eventually(released, timeout=30)

    def announced() -> list[dict[str, Any]]:
        return [e for e in kafka.events(job["id"], ORDERS_TOPIC) if e["type"] == "order_bulk_job.completed"]

    (completed,) = await eventually(announced, timeout=30)
    assert sorted(f["order_id"] for f in completed["data"]["failures"]) == sorted(
        [cancelled_before["order_id"], fulfilled["order_id"], unknown]
    )

    def cancelled(fo: dict[str, Any]) -> set[str]:
        return {e["id"] for e in kafka.events(fo["order_id"], ORDERS_TOPIC) if e["type"] == "order.cancelled"}

    # Each order's events are its own (on its own partition): the job's announcement does not say
    # they were all read already.
    await eventually(lambda: all(cancelled(fo) for fo in fos[:3]), timeout=30)
    for fo in fos[:3]:
        assert len(cancelled(fo)) == 1


@pytest.mark.parametrize(
    ("service", "body"),
    [
        ("orders", {"action": "cancel_orders", "refund": "later", "restock": False, "reason": "other"}),
        ("fulfillment", {"action": "mark_unfulfilled"}),
        ("fulfillment", {"action": "request_fulfillment"}),
        ("fulfillment", {"action": "cancel_fulfillment_requests"}),
    ],
)
async def test_250_order_ids_are_accepted_and_251_refused_naming_the_field(
    shop: Shop, service: str, body: dict[str, Any]
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(251)]
    url = f"{shop.stack.url(service)}/bulk-jobs"
    refused = await shop.http.post(url, json={**body, "order_ids": ids})
    assert refused.status_code == 422, refused.text
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["order_ids"]
    job = await run_job(shop, service, {**body, "order_ids": ids[:250]})
    assert (job["total"], job["failed"]) == (250, 250)
    assert {result["error"]["code"] for result in job["results"]} == {"not_found"}


@pytest.mark.parametrize(
    ("service", "body", "field"),
    [
        ("orders", {"action": "cancel_orders", "order_ids": ["a"], "restock": True, "reason": "other"}, "refund"),
        ("orders", {"action": "cancel_orders", "order_ids": [], "refund": "now", "restock": True}, "order_ids"),
        ("fulfillment", {"action": "mark_unfulfilled", "fulfillment_order_ids": ["a"]}, "fulfillment_order_ids"),
        ("fulfillment", {"action": "mark_unfulfilled", "order_ids": ["a"], "note": "x"}, "note"),
        ("fulfillment", {"action": "fulfill", "order_ids": ["a"]}, "order_ids"),
    ],
)
async def test_a_bad_bulk_request_on_orders_is_refused_naming_the_field(
    shop: Shop, service: str, body: dict[str, Any], field: str
) -> None:
    reply = await shop.http.post(f"{shop.stack.url(service)}/bulk-jobs", json=body)
    assert reply.status_code == 422, reply.text
    assert field in [detail["field"] for detail in reply.json()["error"]["details"]]
