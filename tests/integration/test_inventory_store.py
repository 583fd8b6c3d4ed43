"""Inventory's stock and reservation records against the real embedded store (nx-27017).

No broker here: events stay in the documents' outboxes, where the tests read them. Each test
gets a database of its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.inventory.app import bootstrap
from services.inventory.application import FaultPoints, Inventory
from shared.catalog import FulfillmentOrderSnapshot, FulfillmentSnapshot, OrderCancelled

NOW = "2026-01-01T00:00:00.000000+00:00"


def build(db: Any, faults: FaultPoints | None = None) -> Inventory:
    def nothing(*_: object) -> None:
        return None

    return bootstrap(db, nothing, faults=faults)


@pytest.fixture
def inventory(db: Any) -> Inventory:
    return build(db)


def fo(fo_id: str, location_id: str | None = "wh-1", status: str = "OPEN", order_id: str | None = None,
       lines: dict[str, int] | None = None) -> FulfillmentOrderSnapshot:  # fmt: skip
    wanted = lines or {"MUG-1": 1}
    items = [{"line_item_id": f"li-{sku}", "sku": sku, "quantity": q} for sku, q in wanted.items()]
    return FulfillmentOrderSnapshot.model_validate({
        "id": fo_id, "order_id": order_id or f"order-{fo_id}", "location_id": location_id, "status": status,
        "line_items": items, "created_at": NOW, "updated_at": NOW,
    })  # fmt: skip


def shipment(fulfillment_id: str, of: FulfillmentOrderSnapshot, **skus: int) -> FulfillmentSnapshot:
    return FulfillmentSnapshot.model_validate({
        "id": fulfillment_id, "order_id": of.order_id, "fulfillment_order_id": of.id, "location_id": of.location_id,
        "status": "SUCCESS",
        "line_items": [{"line_item_id": f"li-{k}", "sku": k, "quantity": q} for k, q in skus.items()],
        "created_at": NOW, "updated_at": NOW,
    })  # fmt: skip


def cancellation(order_id: str, restock: bool) -> OrderCancelled:
    return OrderCancelled.model_validate({
        "order": {"id": order_id, "customer": {"email": "x@example.com", "name": "X"}, "currency": "SEK",
                  "financial_status": "paid", "line_items": [], "created_at": NOW},
        "refund": "none", "refunded": False, "restock": restock, "notify_customer": False, "reason": "customer",
    })  # fmt: skip


async def outbox(collection: Any, doc_id: str) -> list[dict[str, Any]]:
    """Events a document emitted, in order (nothing relays them here)."""
    doc = await collection.find_one({"_id": doc_id})
    entries = sorted((doc or {}).get("outbox", {}).values(), key=lambda entry: entry["seq"])
    return [entry["event"] for entry in entries]


async def answers(db: Any, fo_id: str) -> list[dict[str, Any]]:
    """What inventory announced of a fulfillment order, once per event id (as consumers take
    them), in the order it was said: from the record's outbox and from the stock outboxes its
    answers rode with (nothing relays them here)."""
    sources = [await db["reservations"].find_one({"_id": fo_id}), *[doc async for doc in db["stock"].find({})]]
    found: dict[str, dict[str, Any]] = {}
    for doc in sources:
        for entry in (doc or {}).get("outbox", {}).values():
            event = entry["event"]
            if event["type"] == "inventory.level_changed" or event["data"].get("fulfillment_order_id") != fo_id:
                continue
            if event["id"] not in found or event["time"] < found[event["id"]]["time"]:
                found[event["id"]] = event
    return sorted(found.values(), key=lambda event: event["time"])


async def events_of(db: Any, fo_id: str) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(e["type"], e["data"]["lines"]) for e in await answers(db, fo_id)]


async def levels_of(db: Any, location_id: str, sku: str) -> list[dict[str, Any]]:
    """The level events a stock emitted, in order."""
    events = await outbox(db["stock"], f"{location_id}/{sku}")
    return [e["data"] for e in events if e["type"] == "inventory.level_changed"]


async def committed(db: Any, location_id: str, sku: str) -> int:
    """Units shipped from a stock and not put back, by the fulfillment orders' records."""
    records = [record async for record in db["reservations"].find({})]
    return sum(
        c["quantity"]
        for record in records
        for c in record.get("fulfillments", [])
        if (c["location_id"], c["sku"], c["state"]) == (location_id, sku, "committed")
    )


async def stocked(inventory: Inventory, **skus: int) -> None:
    await inventory.locations.put("wh-1", "Warehouse", 1, True, None)
    for sku, on_hand in skus.items():
        await inventory.set_on_hand("wh-1", sku, on_hand)


async def test_fifty_concurrent_reservations_for_ten_units_succeed_exactly_ten_times(
    db: Any, inventory: Inventory
) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    requests = [fo(f"fo-{i:02d}") for i in range(50)]
    # One store per request, as if 50 replicas: nothing in-process queues them, only the
    # conditional write in the database keeps them apart.
    replicas = [build(db) for _ in requests]

    await asyncio.gather(*(replica.reserve(f"event-{r.id}", r) for replica, r in zip(replicas, requests, strict=True)))

    records = await inventory.reservations.records.find({})
    statuses = [r.status for r in records]
    assert (statuses.count("reserved"), statuses.count("reservation_failed")) == (10, 40)
    level = await inventory.stock.level("wh-1", "MUG-1")
    assert (level.on_hand, level.reserved, level.available) == (10, 10, 0)
    assert sorted(level.holds) == sorted(r.fulfillment_order_id for r in records if r.status == "reserved")
    # Every stock change emitted its exact level, in order: the count, then reserved 1..10.
    levels = [(level["reserved"], level["available"]) for level in await levels_of(db, "wh-1", "MUG-1")]
    assert levels == [(n, 10 - n) for n in range(11)]


async def test_concurrent_multi_line_requests_are_all_or_nothing(db: Any, inventory: Inventory) -> None:
    await stocked(inventory, **{"MUG-1": 10, "TEE-1": 5})
    requests = [fo(f"fo-{i:02d}", lines={"MUG-1": 1, "TEE-1": 1}) for i in range(20)]
    replicas = [build(db) for _ in requests]

    await asyncio.gather(*(replica.reserve(f"event-{r.id}", r) for replica, r in zip(replicas, requests, strict=True)))

    reserved = {r.fulfillment_order_id for r in await inventory.reservations.records.find({"status": "reserved"})}
    assert len(reserved) == 5
    mug, tee = await inventory.stock.level("wh-1", "MUG-1"), await inventory.stock.level("wh-1", "TEE-1")
    assert set(mug.holds) == set(tee.holds) == reserved  # a failed request keeps no line held
    assert (mug.reserved, tee.reserved, tee.available) == (5, 5, 0)
    failed = await inventory.reservations.records.find({"status": "reservation_failed"})
    # Each failure names a shortage (MUG-1 too can be short for a moment: held by requests
    # that are about to fail and let go again).
    assert len(failed) == 15 and all(r.shortages for r in failed)


async def test_a_request_delivered_twice_reserves_once(db: Any, inventory: Inventory) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    request = fo("fo-1", lines={"MUG-1": 3})

    await inventory.reserve("event-1", request)
    await asyncio.gather(build(db).reserve("event-1", request), build(db).reserve("event-1", request))

    assert (await inventory.stock.level("wh-1", "MUG-1")).reserved == 3
    assert await events_of(db, "fo-1") == [("inventory.reserved", [{"sku": "MUG-1", "quantity": 3}])]


async def test_a_stale_duplicate_after_release_does_not_reserve_again(db: Any, inventory: Inventory) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    request = fo("fo-1", lines={"MUG-1": 3})
    await inventory.reserve("event-1", request)
    await inventory.release("event-2", fo("fo-1", status="CANCELLED", lines={"MUG-1": 3}))

    await inventory.reserve("event-1", request)

    assert (await inventory.stock.level("wh-1", "MUG-1")).reserved == 0
    assert [t for t, _ in await events_of(db, "fo-1")] == ["inventory.reserved", "inventory.released"]


async def test_reservation_at_an_inactive_or_unknown_location_fails_with_shortages(
    db: Any, inventory: Inventory
) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    await inventory.locations.put("wh-1", "Warehouse", 1, False, None)
    await inventory.reserve("event-1", fo("fo-1", lines={"MUG-1": 2}))
    await inventory.reserve("event-2", fo("fo-2", location_id="nowhere", lines={"MUG-1": 2}))

    for fo_id in ("fo-1", "fo-2"):
        [event] = await outbox(db["reservations"], fo_id)
        assert event["type"] == "inventory.reservation_failed"
        assert event["data"]["shortages"] == [{"sku": "MUG-1", "requested": 2, "available": 0, "seq": None}]
    assert (await inventory.stock.level("wh-1", "MUG-1")).reserved == 0


async def test_digital_and_cancelled_fulfillment_orders_are_not_inventorys_business(
    db: Any, inventory: Inventory
) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    await inventory.reserve("event-1", fo("fo-1", location_id=None))
    await inventory.reserve("event-2", fo("fo-2", status="CANCELLED"))
    assert await inventory.reservations.records.find({}) == []
    assert (await inventory.stock.level("wh-1", "MUG-1")).reserved == 0


async def test_moved_releases_at_the_previous_location_and_reserves_at_the_new_one(
    db: Any, inventory: Inventory
) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    await inventory.locations.put("wh-2", "Store", 2, True, None)
    await inventory.set_on_hand("wh-2", "MUG-1", 1)
    await inventory.reserve("event-1", fo("fo-1", lines={"MUG-1": 3}))

    await inventory.reserve("event-2", fo("fo-1", location_id="wh-2", lines={"MUG-1": 3}), previous_location_id="wh-1")

    assert [(e["type"], e["data"]["location_id"]) for e in await answers(db, "fo-1")] == [
        ("inventory.reserved", "wh-1"), ("inventory.released", "wh-1"), ("inventory.reservation_failed", "wh-2"),
    ]  # fmt: skip
    assert (await inventory.stock.level("wh-1", "MUG-1")).reserved == 0
    assert (await inventory.stock.level("wh-2", "MUG-1")).reserved == 0


async def test_fulfil_cancel_fulfilment_then_cancel_order_with_restock(db: Any, inventory: Inventory) -> None:
    await stocked(inventory, **{"MUG-1": 10, "TEE-1": 4})
    request = fo("fo-1", order_id="order-1", lines={"MUG-1": 3, "TEE-1": 2})
    await inventory.reserve("e1", request)

    await inventory.commit("e2", shipment("f-1", request, **{"MUG-1": 2}))
    await inventory.commit("e2", shipment("f-1", request, **{"MUG-1": 2}))  # redelivered
    mug = await inventory.stock.level("wh-1", "MUG-1")
    assert (mug.on_hand, mug.reserved, mug.holds["fo-1"]) == (8, 1, 1)

    await inventory.commit("e3", shipment("f-2", request, **{"MUG-1": 1}))
    await inventory.cancel_commit("e4", shipment("f-2", request, **{"MUG-1": 1}), request)
    mug = await inventory.stock.level("wh-1", "MUG-1")
    assert (mug.on_hand, mug.reserved, mug.holds["fo-1"]) == (8, 1, 1)  # f-2 back to reserved

    await inventory.cancel_order("e5", cancellation("order-1", restock=True))
    await inventory.cancel_order("e5", cancellation("order-1", restock=True))  # redelivered
    mug, tee = await inventory.stock.level("wh-1", "MUG-1"), await inventory.stock.level("wh-1", "TEE-1")
    assert (mug.on_hand, mug.reserved, mug.available) == (10, 0, 10)  # f-1's 2 units restocked
    assert (tee.on_hand, tee.reserved) == (4, 0)
    assert await events_of(db, "fo-1") == [
        ("inventory.reserved", [{"sku": "MUG-1", "quantity": 3}, {"sku": "TEE-1", "quantity": 2}]),
        ("inventory.committed", [{"sku": "MUG-1", "quantity": 2}]),
        ("inventory.committed", [{"sku": "MUG-1", "quantity": 1}]),
        ("inventory.reserved", [{"sku": "MUG-1", "quantity": 1}]),
        ("inventory.restocked", [{"sku": "MUG-1", "quantity": 2}]),
        ("inventory.released", [{"sku": "MUG-1", "quantity": 1}, {"sku": "TEE-1", "quantity": 2}]),
    ]


async def test_cancel_without_restock_only_releases(db: Any, inventory: Inventory) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    request = fo("fo-1", order_id="order-1", lines={"MUG-1": 3})
    await inventory.reserve("e1", request)
    await inventory.commit("e2", shipment("f-1", request, **{"MUG-1": 1}))

    await inventory.cancel_order("e3", cancellation("order-1", restock=False))

    mug = await inventory.stock.level("wh-1", "MUG-1")
    assert (mug.on_hand, mug.reserved, await committed(db, "wh-1", "MUG-1")) == (9, 0, 1)


async def test_a_shipment_that_arrives_after_a_restocking_cancel_comes_straight_back(
    db: Any, inventory: Inventory
) -> None:
    await stocked(inventory, **{"MUG-1": 10})
    request = fo("fo-1", order_id="order-1", lines={"MUG-1": 3})
    await inventory.reserve("e1", request)
    await inventory.cancel_order("e2", cancellation("order-1", restock=True))

    await inventory.commit("e3", shipment("f-1", request, **{"MUG-1": 3}))

    mug = await inventory.stock.level("wh-1", "MUG-1")
    assert (mug.on_hand, mug.reserved, await committed(db, "wh-1", "MUG-1")) == (10, 0, 0)
    assert [t for t, _ in await events_of(db, "fo-1")][-2:] == ["inventory.committed", "inventory.restocked"]


class CrashOnce(FaultPoints):
    """Like the crash point of the real process, but raising, so the test can 'restart'."""

    def __init__(self, at: str) -> None:
        super().__init__()
        self.at = at
        self.crashed = False

    def reached(self, name: str) -> None:
        if name == self.at and not self.crashed:
            self.crashed = True
            raise SystemExit(f"crash at {name}")


@pytest.mark.parametrize("step", ["reserve", "release", "commit", "cancel_commit", "restock"])
async def test_a_crash_between_stock_update_and_record_loses_no_event(db: Any, step: str, tmp_path: Path) -> None:
    """Redelivery after a crash finds the stock effect done and still announces it, once."""
    healthy = build(db)
    await stocked(healthy, **{"MUG-1": 10})
    request = fo("fo-1", order_id="order-1", lines={"MUG-1": 3})
    ship = shipment("f-1", request, **{"MUG-1": 2})
    if step != "reserve":
        await healthy.reserve("e-reserve", request)
    if step in ("cancel_commit", "restock"):
        await healthy.commit("e-commit", ship)
    before = await events_of(db, "fo-1")

    async def run(inventory: Inventory) -> None:
        if step == "reserve":
            await inventory.reserve("e-step", request)
        elif step == "release":
            await inventory.release("e-step", fo("fo-1", order_id="order-1", status="CANCELLED", lines={"MUG-1": 3}))
        elif step == "commit":
            await inventory.commit("e-step", ship)
        elif step == "cancel_commit":
            await inventory.cancel_commit("e-step", ship, request)
        else:
            await inventory.cancel_order("e-step", cancellation("order-1", restock=True))

    crashing = build(db, CrashOnce("inventory.after_stock_update"))
    with pytest.raises(SystemExit):
        await run(crashing)
    record = await db["reservations"].find_one({"_id": "fo-1"})
    assert "e-step" not in (record or {}).get("inbox", {})  # the stock moved, the record knows nothing yet
    await run(healthy)  # redelivery
    await run(healthy)  # and once more

    expected = {
        "reserve": [("inventory.reserved", 3)],
        "release": [("inventory.released", 3)],
        "commit": [("inventory.committed", 2)],
        "cancel_commit": [("inventory.reserved", 2)],
        "restock": [("inventory.restocked", 2), ("inventory.released", 1)],
    }[step]
    after = (await events_of(db, "fo-1"))[len(before) :]
    assert [(t, sum(line["quantity"] for line in lines)) for t, lines in after] == expected
    mug = await healthy.stock.level("wh-1", "MUG-1")
    expected_level = {
        "reserve": (10, 3), "release": (10, 0), "commit": (8, 1), "cancel_commit": (10, 3), "restock": (10, 0),
    }[step]  # fmt: skip
    assert (mug.on_hand, mug.reserved) == expected_level
