"""Bulk actions on orders survive a SIGKILL of the service running them (issue 11: "a SIGKILL
mid-job resumes without acting twice"), on a stack of their own with short bulk-job leases:

- orders is killed in the middle of a bulk cancel_orders and restarted: the job completes, every
  order is cancelled once (one order.cancelled each on orders.events.v1), the stock released once;
- fulfillment is killed in the middle of a bulk mark_unfulfilled and restarted: the job completes,
  every fulfillment is cancelled once (one fulfillment.cancelled each), the stock reserved again once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import bearer, eventually, running_stack
from tests.e2e.test_bulk_jobs import finished, open_fulfillment_orders
from tests.e2e.test_bulk_order_actions import ORDERS_TOPIC
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

ORDERS = 150


@pytest.fixture(scope="module")
def crash_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("bulk-orders-crash"), BULK_JOB_LEASE_SECONDS="2") as local:
        yield local


async def killed_mid_job(stack: LocalStack, http: httpx.AsyncClient, service: str, body: dict[str, Any]) -> str:
    """Start the job on `service`, SIGKILL the service once 10 results are in, restart it."""
    url = f"{stack.url(service)}/bulk-jobs"
    started = await http.post(url, json=body)
    assert started.status_code == 202, started.text
    job_id = str(started.json()["id"])

    async def under_way() -> bool:
        job = (await http.get(f"{url}/{job_id}")).json()
        assert job["status"] == "RUNNING", "the job finished before it could be interrupted"
        return bool(job["done"] >= 10)

    await eventually(under_way, timeout=60, interval=0.02)
    stack.kill_child(next(child for child in stack.children if child.name == service))
    stack.start_service(service)
    stack.wait_until_ready(90)
    return job_id


def distinct(events: list[dict[str, Any]], event_type: str) -> int:
    """Events of this type by id: the relay may publish one twice (consumers absorb it by id)."""
    return len({event["id"] for event in events if event["type"] == event_type})


async def completed_on(shop: Shop, service: str, job_id: str) -> dict[str, Any]:
    async def completed() -> dict[str, Any] | None:
        job = dict((await shop.http.get(f"{shop.stack.url(service)}/bulk-jobs/{job_id}")).json())
        return job if job["status"] == "COMPLETED" else None

    return dict(await eventually(completed, timeout=180, interval=0.25))


async def test_a_bulk_cancel_survives_a_sigkill_of_orders_and_cancels_each_order_once(
    crash_stack: LocalStack,
) -> None:
    async with (
        httpx.AsyncClient(timeout=10, headers=bearer(crash_stack)) as http,
        TopicReader(crash_stack.kafka_bootstrap, ORDERS_TOPIC) as kafka,
    ):
        shop = Shop(crash_stack, http)
        fos = await open_fulfillment_orders(shop, ORDERS)
        body = {"action": "cancel_orders", "order_ids": [fo["order_id"] for fo in fos], "refund": "now",
                "restock": True, "notify_customer": False, "reason": "customer"}  # fmt: skip
        job_id = await killed_mid_job(crash_stack, http, "orders", body)

        job = await completed_on(shop, "orders", job_id)
        assert (job["total"], job["succeeded"], job["failed"]) == (ORDERS, ORDERS, 0)

        def each_cancelled_once() -> bool:
            counts = [distinct(kafka.events(fo["order_id"], ORDERS_TOPIC), "order.cancelled") for fo in fos]
            assert max(counts) <= 1, "an order was cancelled twice"
            return min(counts) == 1

        await eventually(each_cancelled_once, timeout=60)

        async def released_once() -> bool:
            (level,) = (await shop.levels(fos[0]["line_items"][0]["sku"])).values()
            return (level["on_hand"], level["reserved"]) == (ORDERS, 0)

        await eventually(released_once, timeout=60)


async def test_a_bulk_mark_unfulfilled_survives_a_sigkill_of_fulfillment_and_cancels_each_fulfillment_once(
    crash_stack: LocalStack,
) -> None:
    async with (
        httpx.AsyncClient(timeout=10, headers=bearer(crash_stack)) as http,
        TopicReader(crash_stack.kafka_bootstrap, FULFILLMENT_TOPIC) as kafka,
    ):
        shop = Shop(crash_stack, http)
        fos = await open_fulfillment_orders(shop, ORDERS)
        fulfil = await shop.post("/bulk-jobs", {"action": "fulfill", "fulfillment_order_ids": [fo["id"] for fo in fos]})
        assert fulfil.status_code == 202, fulfil.text
        assert (await finished(shop, fulfil.json()["id"]))["succeeded"] == ORDERS
        body = {"action": "mark_unfulfilled", "order_ids": [fo["order_id"] for fo in fos]}
        job_id = await killed_mid_job(crash_stack, http, "fulfillment", body)

        job = await completed_on(shop, "fulfillment", job_id)
        assert (job["total"], job["succeeded"], job["failed"]) == (ORDERS, ORDERS, 0)
        for fo in fos:
            (now,) = await shop.fulfillment_orders(fo["order_id"])
            assert (now["status"], [f["status"] for f in now["fulfillments"]]) == ("OPEN", ["CANCELLED"])

        def each_cancelled_once() -> bool:
            counts = [distinct(kafka.events(fo["order_id"], FULFILLMENT_TOPIC), "fulfillment.cancelled") for fo in fos]
            assert max(counts) <= 1, "a fulfillment was cancelled twice"
            return min(counts) == 1

        await eventually(each_cancelled_once, timeout=60)

        async def reserved_again_once() -> bool:
            (level,) = (await shop.levels(fos[0]["line_items"][0]["sku"])).values()
            return (level["on_hand"], level["reserved"]) == (ORDERS, ORDERS)

        await eventually(reserved_again_once, timeout=60)
        await shop.display_status(fos[-1]["order_id"], "UNFULFILLED")
