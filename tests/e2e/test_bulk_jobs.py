"""Bulk actions on fulfillment orders, end to end and against the real store.

- Through the whole stack: a bulk fulfil of 30 fulfillment orders plus 2 on hold and 1 unknown
  completes with 30 shipped and 3 failed with the single action's reasons, announced on Kafka;
  a bulk hold then a bulk release; bad requests are refused naming the field.
- On a stack of its own: fulfillment is killed (SIGKILL) in the middle of a bulk fulfil and
  restarted; the job completes and every fulfillment order shipped once, its stock committed once.
- Against the session's store (no broker: events stay in the outboxes): a job resumed after a
  crash between changing a fulfillment order and recording the result does not change it twice,
  and two replicas working at once act on each fulfillment order once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from services.fulfillment.application import Fulfillment
from services.fulfillment.bulk import BulkJobs
from services.fulfillment.domain import bulk_job as rules
from services.fulfillment.domain.bulk_job import BulkAction, BulkJob, Outcome
from services.fulfillment.store import BULK_JOBS
from shared.catalog import InventoryReservation, StockLine
from shared.store import now_iso
from tests.conftest import bearer, eventually, running_stack
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop, physical
from tests.integration.test_fulfillment_sweep import DatabaseStores, paid, replica, stocked
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


async def open_fulfillment_orders(shop: Shop, count: int) -> list[dict[str, Any]]:
    """`count` paid one-line orders at one location, each with one reserved, OPEN fulfillment order."""
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, count)
    orders = []
    for start in range(0, count, 8):
        orders += await asyncio.gather(
            *(shop.paid_order(physical(mug, 1)) for _ in range(start, min(count, start + 8)))
        )
    fulfillment_orders = []
    for order in orders:
        (fo,) = await shop.settle(order["id"], 1, timeout=60)
        assert fo["status"] == "OPEN"
        fulfillment_orders.append(fo)
    return fulfillment_orders


async def finished(shop: Shop, job_id: str, timeout: float = 120) -> dict[str, Any]:
    async def completed() -> dict[str, Any] | None:
        reply = await shop.http.get(f"{shop.stack.url('fulfillment')}/bulk-jobs/{job_id}")
        assert reply.status_code == 200, reply.text
        job = dict(reply.json())
        return job if job["status"] == "COMPLETED" else None

    return dict(await eventually(completed, timeout=timeout, interval=0.25))


async def test_bulk_fulfil_ships_every_open_one_and_reports_each_failure(shop: Shop) -> None:
    fos = await open_fulfillment_orders(shop, 32)
    held = fos[:2]
    for fo in held:
        reply = await shop.post(f"/fulfillment-orders/{fo['id']}/hold", {"reason": "INCORRECT_ADDRESS"})
        assert reply.status_code == 200, reply.text
    unknown = f"no-such-fo-{shop.tag}"
    asked = [fo["id"] for fo in fos] + [unknown]

    started = await shop.post(
        "/bulk-jobs",
        {"action": "fulfill", "fulfillment_order_ids": asked, "notify_customer": False, "tracking_company": "PostNord"},
    )
    assert started.status_code == 202, started.text
    assert (started.json()["status"], started.json()["total"], started.json()["done"]) == ("RUNNING", 33, 0)
    job = await finished(shop, started.json()["id"])

    assert (job["action"], job["total"], job["done"], job["succeeded"], job["failed"]) == ("fulfill", 33, 33, 30, 3)
    results = {result["fulfillment_order_id"]: result for result in job["results"]}
    assert [result["fulfillment_order_id"] for result in job["results"]] == asked
    for fo in held:
        error = results[fo["id"]]["error"]
        assert results[fo["id"]]["status"] == "failed"
        assert error["code"] == "conflict"
        assert "ON_HOLD (INCORRECT_ADDRESS): release the hold first" in error["message"]
    assert results[unknown]["error"] == {
        "code": "not_found",
        "message": f"fulfillment order {unknown!r} does not exist",
    }
    for fo in fos[2:]:
        assert results[fo["id"]] == {"fulfillment_order_id": fo["id"], "status": "succeeded", "error": None}
        (now,) = await shop.fulfillment_orders(fo["order_id"])
        assert now["status"] == "CLOSED"
        assert [f["tracking"]["company"] for f in now["fulfillments"]] == ["PostNord"]
    for fo in held:
        (now,) = await shop.fulfillment_orders(fo["order_id"])
        assert (now["status"], now["fulfillments"]) == ("ON_HOLD", [])
    await shop.display_status(fos[2]["order_id"], "FULFILLED")
    await shop.display_status(fos[-1]["order_id"], "FULFILLED")

    async with TopicReader(shop.stack.kafka_bootstrap, FULFILLMENT_TOPIC) as reader:

        async def announced() -> list[dict[str, Any]]:
            return [e for e in reader.events(job["id"], FULFILLMENT_TOPIC) if e["type"] == "bulk_job.completed"]

        (completed,) = await eventually(announced, timeout=30)
        assert [e["type"] for e in reader.events(job["id"], FULFILLMENT_TOPIC)] == [
            "bulk_job.progress",
            "bulk_job.completed",
        ]
    counts = completed["data"]["bulk_job"]
    assert (counts["status"], counts["succeeded"], counts["failed"]) == ("COMPLETED", 30, 3)
    assert sorted(f["fulfillment_order_id"] for f in completed["data"]["failures"]) == sorted(
        [fo["id"] for fo in held] + [unknown]
    )


async def test_bulk_hold_then_bulk_release(shop: Shop) -> None:
    fos = await open_fulfillment_orders(shop, 6)
    ids = [fo["id"] for fo in fos]

    hold = await shop.post(
        "/bulk-jobs", {"action": "hold", "fulfillment_order_ids": ids, "reason": "HIGH_RISK_OF_FRAUD", "note": "check"}
    )
    assert hold.status_code == 202, hold.text
    job = await finished(shop, hold.json()["id"])
    assert (job["succeeded"], job["failed"]) == (6, 0)
    for fo in fos:
        (now,) = await shop.fulfillment_orders(fo["order_id"])
        assert now["status"] == "ON_HOLD"
        assert [(h["reason"], h["note"]) for h in now["holds"]] == [("HIGH_RISK_OF_FRAUD", "check")]

    release = await shop.post("/bulk-jobs", {"action": "release_hold", "fulfillment_order_ids": ids})
    assert release.status_code == 202, release.text
    job = await finished(shop, release.json()["id"])
    assert (job["succeeded"], job["failed"]) == (6, 0)
    for fo in fos:
        (now,) = await shop.fulfillment_orders(fo["order_id"])
        assert (now["status"], now["holds"]) == ("OPEN", [])

    again = await shop.post("/bulk-jobs", {"action": "release_hold", "fulfillment_order_ids": ids[:1]})
    job = await finished(shop, again.json()["id"])
    assert job["results"][0]["status"] == "failed"
    assert "not on hold" in job["results"][0]["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "fulfill", "fulfillment_order_ids": []}, "fulfillment_order_ids"),
        ({"action": "fulfill", "fulfillment_order_ids": [f"fo-{n}" for n in range(251)]}, "fulfillment_order_ids"),
        ({"action": "fulfill", "fulfillment_order_ids": ["a", "b", "a"]}, "fulfillment_order_ids.2"),
        ({"action": "explode", "fulfillment_order_ids": ["a"]}, "action"),
        ({"action": "hold", "fulfillment_order_ids": ["a"]}, "reason"),
        ({"action": "move", "fulfillment_order_ids": ["a"]}, "location_id"),
        ({"action": "move", "fulfillment_order_ids": ["a"], "location_id": "nowhere-at-all"}, "location_id"),
        ({"action": "fulfill", "fulfillment_order_ids": ["a"], "note": "x"}, "note"),
    ],
)
async def test_a_bad_bulk_request_is_refused_naming_the_field(shop: Shop, body: dict[str, Any], field: str) -> None:
    reply = await shop.post("/bulk-jobs", body)
    assert reply.status_code == 422, reply.text
    assert field in [detail["field"] for detail in reply.json()["error"]["details"]]


async def test_an_unknown_bulk_job_is_not_found(shop: Shop) -> None:
    reply = await shop.http.get(f"{shop.stack.url('fulfillment')}/bulk-jobs/no-such-job")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


# --- a crash of the fulfillment service mid-job ------------------------------------------------


@pytest.fixture(scope="module")
def crash_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack of its own, since its fulfillment service gets killed; short bulk job leases."""
    with running_stack(tmp_path_factory.mktemp("bulk-crash"), BULK_JOB_LEASE_SECONDS="2") as local:
        yield local


async def test_a_bulk_fulfil_survives_a_crash_of_fulfillment_and_ships_each_order_once(
    crash_stack: LocalStack,
) -> None:
    async with (
        httpx.AsyncClient(timeout=10, headers=bearer(crash_stack)) as http,
        TopicReader(crash_stack.kafka_bootstrap, FULFILLMENT_TOPIC) as kafka,
    ):
        shop = Shop(crash_stack, http)
        fos = await open_fulfillment_orders(shop, 120)
        started = await shop.post(
            "/bulk-jobs", {"action": "fulfill", "fulfillment_order_ids": [fo["id"] for fo in fos]}
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]

        async def under_way() -> dict[str, Any] | None:
            job = dict((await http.get(f"{crash_stack.url('fulfillment')}/bulk-jobs/{job_id}")).json())
            assert job["status"] == "RUNNING", "the job finished before it could be interrupted"
            return job if job["done"] >= 10 else None

        await eventually(under_way, timeout=60, interval=0.05)
        crash_stack.kill_child(next(child for child in crash_stack.children if child.name == "fulfillment"))
        crash_stack.start_service("fulfillment")
        crash_stack.wait_until_ready(90)

        job = await finished(shop, job_id, timeout=180)
        assert (job["total"], job["succeeded"], job["failed"]) == (120, 120, 0)
        for fo in fos:
            (now,) = await shop.fulfillment_orders(fo["order_id"])
            assert (now["status"], len(now["fulfillments"])) == ("CLOSED", 1)

        async def stock_committed_once() -> bool:
            (level,) = (await shop.levels(fos[0]["line_items"][0]["sku"])).values()
            return (level["on_hand"], level["reserved"]) == (0, 0)

        await eventually(stock_committed_once, timeout=60)

        def announced() -> bool:
            return any(e["type"] == "bulk_job.completed" for e in kafka.events(job_id, FULFILLMENT_TOPIC))

        await eventually(announced, timeout=30)

        def shipped(fo: dict[str, Any]) -> set[str]:
            events = kafka.events(fo["order_id"], FULFILLMENT_TOPIC)
            return {e["id"] for e in events if e["type"] == "fulfillment.created"}

        # Each fulfillment order's events are its own (relayed from its outbox, on its order's
        # partition): the job's announcement does not say they were all read already.
        await eventually(lambda: all(shipped(fo) for fo in fos), timeout=30)
        for fo in fos:
            assert len(shipped(fo)) == 1, fo["id"]


# --- against the store: resuming and two replicas ----------------------------------------------


async def reserved_fulfillment_orders(service: Fulfillment, count: int) -> list[str]:
    """`count` OPEN fulfillment orders whose stock inventory confirmed (no broker: told directly)."""
    await stocked(service, "wh", "MUG", count)
    ids = []
    for order in [paid("MUG") for _ in range(count)]:
        await service.route_paid_order(order, f"paid-{order.id}")
        (fo,) = await service.fulfillment_orders.find({"order_id": order.id})
        reservation = InventoryReservation(
            order_id=order.id, fulfillment_order_id=fo.id, location_id="wh", lines=[StockLine(sku="MUG", quantity=1)]
        )
        await service.reservation_confirmed(reservation, f"reserved-{fo.id}")
        ids.append(fo.id)
    return ids


def existing(job: BulkJob | None) -> BulkJob:
    assert job is not None
    return job


def bulk_worker(db: Any, service: Fulfillment, owner: str, lease_seconds: float = 30) -> BulkJobs:
    jobs = DatabaseStores(db).store("bulk_jobs", mapping=BULK_JOBS)
    return BulkJobs(jobs, service, owner=owner, lease_seconds=lease_seconds)


async def shipments(service: Fulfillment, fo_ids: list[str]) -> list[int]:
    found = [await service.fulfillment_orders.get(fo_id) for fo_id in fo_ids]
    return [len(fo.fulfillments) if fo else 0 for fo in found]


async def test_a_job_resumed_after_a_crash_does_not_act_twice_on_a_fulfillment_order(db: Any) -> None:
    service = replica(db)
    fo_ids = await reserved_fulfillment_orders(service, 5)
    crashed = bulk_worker(db, service, owner="crashed", lease_seconds=0)  # its lease runs out at once
    job = await crashed.start(BulkAction.FULFILL, fo_ids, {"notify_customer": True})
    # The replica claimed the job, shipped the first two fulfillment orders, recorded only the first, died.
    claimed = await crashed.jobs.apply(job.id, lambda current: rules.claim(existing(current), "crashed", now_iso(), 0))
    assert claimed is not None
    job = claimed
    assert (await crashed.apply_once(job, fo_ids[0])).succeeded
    await crashed.jobs.apply(
        job.id, lambda current: rules.record(existing(current), 0, Outcome(), "crashed", now_iso(), 0)
    )
    assert (await crashed.apply_once(job, fo_ids[1])).succeeded
    assert await shipments(service, fo_ids) == [1, 1, 0, 0, 0]

    resumed = bulk_worker(db, service, owner="resumed")
    await resumed.claim_and_start()
    await resumed.drain()

    done = await resumed.get(job.id)
    assert done is not None
    assert (done.status, done.succeeded, done.failed) == ("COMPLETED", 5, 0)
    assert await shipments(service, fo_ids) == [1, 1, 1, 1, 1]


async def test_two_replicas_working_at_once_act_on_each_fulfillment_order_once(db: Any) -> None:
    service = replica(db)
    fo_ids = await reserved_fulfillment_orders(service, 40)
    # Leases of no length: each replica may take the job over from the other at any moment,
    # the worst case of a replica stalling past its lease while the other carries on.
    first, second = bulk_worker(db, replica(db), "first", 0), bulk_worker(db, replica(db), "second", 0)
    job = await first.start(BulkAction.FULFILL, [*fo_ids, "missing"], {})

    async def completed() -> BulkJob | None:
        await asyncio.gather(first.claim_and_start(), second.claim_and_start())
        await asyncio.gather(first.drain(), second.drain())
        done = await first.get(job.id)
        return done if done and done.status == "COMPLETED" else None

    done = await eventually(completed, timeout=120)
    assert (done.status, done.succeeded, done.failed) == ("COMPLETED", 40, 1)
    assert await shipments(service, fo_ids) == [1] * 40
    doc = await db["bulk_jobs"].find_one({"_id": job.id})
    types = [entry["event"]["type"] for entry in sorted(doc["outbox"].values(), key=lambda e: e["seq"])]
    assert types == ["bulk_job.progress", "bulk_job.completed"]


async def test_a_250_order_bulk_fulfil_completes(db: Any) -> None:
    service = replica(db)
    fo_ids = await reserved_fulfillment_orders(service, 250)
    worker = bulk_worker(db, service, "only")
    job = await worker.start(BulkAction.FULFILL, fo_ids, {})
    began = time.monotonic()
    await worker.claim_and_start()
    await worker.drain()
    elapsed = time.monotonic() - began
    done = await worker.get(job.id)
    assert done is not None
    assert (done.status, done.succeeded) == ("COMPLETED", 250)
    print(f"250-order bulk fulfil on the embedded store: {elapsed:.1f}s")


async def test_the_order_timeline_names_the_bulk_job_that_held_it(shop: Shop) -> None:
    """Issue 11: every timeline entry carries "the bulk job that did it"."""
    [fo] = await open_fulfillment_orders(shop, 1)
    hold = await shop.post(
        "/bulk-jobs", {"action": "hold", "fulfillment_order_ids": [fo["id"]], "reason": "OTHER", "note": "audit"}
    )
    job = await finished(shop, hold.json()["id"])
    assert job["succeeded"] == 1

    async def held_entry() -> dict[str, Any] | None:
        timeline = (await shop.order(fo["order_id"]))["timeline"]
        return next((e for e in timeline if e["type"] == "fulfillment_order.placed_on_hold"), None)

    entry = await eventually(held_entry)
    assert entry["details"]["bulk_job_id"] == job["id"]
