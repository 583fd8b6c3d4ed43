"""Fulfillment's workflows against the real embedded store (nx-27017): two replicas sweeping
at once never make a transition twice, and a crash between steps is repaired by the sweep.

No broker here: events stay in the documents' outboxes, where the tests count them. Each test
gets a database of its own; two `Fulfillment` objects over one database are two replicas.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

from services.fulfillment.app import FulfillmentSettings, bootstrap
from services.fulfillment.application import Fulfillment, sweep_pass
from services.fulfillment.domain import order_routing
from services.fulfillment.domain.fulfillment_orders import lifecycle
from services.fulfillment.domain.fulfillment_orders.model import Status
from services.fulfillment.store import index_fields
from shared.aggregates import A, StoreMapping
from shared.catalog import InventoryLevel, Location, OrderSnapshot
from shared.store import AggregateStore, now_iso

T0 = "2020-01-01T00:00:00.000000+00:00"


class DatabaseStores:
    """The service's stores over a database alone: no relay (the events stay in the outboxes)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def store(self, collection: str, *, mapping: StoreMapping[A]) -> AggregateStore[A]:
        return AggregateStore(self.db[collection], lambda *_: None, mapping=mapping)


def replica(db: Any, **settings: Any) -> Fulfillment:
    """One replica of the service over `db`, as the service composes it (app.bootstrap)."""
    return bootstrap(DatabaseStores(db), FulfillmentSettings(**settings)).fulfillment


def paid(sku: str, quantity: int = 1, post_purchase_pending: bool = False) -> OrderSnapshot:
    return OrderSnapshot.model_validate({
        "id": str(uuid.uuid4()), "customer": {"email": "b@example.com", "name": "B"}, "currency": "SEK",
        "financial_status": "paid", "created_at": T0, "post_purchase_pending": post_purchase_pending,
        "line_items": [{"id": str(uuid.uuid4()), "sku": sku, "title": sku, "quantity": quantity, "unit_price": "1"}],
    })  # fmt: skip


async def outbox_types(db: Any, order_id: str) -> list[str]:
    """Every event the order's fulfillment orders emitted (none was relayed: no broker)."""
    types: list[str] = []
    async for doc in db["fulfillment_orders"].find({"order_id": order_id}):
        entries = sorted(doc.get("outbox", {}).values(), key=lambda entry: entry["seq"])
        types.extend(entry["event"]["type"] for entry in entries)
    return types


async def stocked(service: Fulfillment, location_id: str, sku: str, available: int) -> None:
    await service.location_updated(Location(id=location_id, name=location_id, priority=1), T0)
    level = InventoryLevel(sku=sku, location_id=location_id, on_hand=available, reserved=0, available=available)
    await service.stock_level_changed(level, now_iso())


async def test_two_replicas_release_each_expired_post_purchase_hold_once(db: Any) -> None:
    first, second = replica(db, post_purchase_hold_seconds=0), replica(db, post_purchase_hold_seconds=0)
    await stocked(first, "wh", "MUG", 100)
    orders = [paid("MUG", post_purchase_pending=True) for _ in range(12)]
    for order in orders:
        await first.route_paid_order(order, f"paid-{order.id}")
    assert await db["fulfillment_orders"].count_documents({"status": "ON_HOLD"}) == 12

    reports = await asyncio.gather(sweep_pass(first), sweep_pass(second), sweep_pass(first), sweep_pass(second))
    assert sum(report.released for report in reports) == 12
    assert await db["fulfillment_orders"].count_documents({"status": "OPEN"}) == 12
    for order in orders:
        assert (await outbox_types(db, order.id)).count("fulfillment_order.hold_released") == 1


async def test_two_replicas_open_each_scheduled_fulfillment_order_once(db: Any) -> None:
    first, second = replica(db), replica(db)
    await stocked(first, "wh", "MUG", 100)
    orders = [paid("MUG") for _ in range(8)]
    for order in orders:
        await first.route_paid_order(order, f"paid-{order.id}")
        (fo,) = await first.fulfillment_orders.find({"order_id": order.id})
        # Due at once (the schedule rule refuses a time not in the future), with the fields the rules keep.
        scheduled = replace(fo, status=Status.SCHEDULED, fulfill_at=now_iso())
        fields = {"status": scheduled.status, "fulfill_at": scheduled.fulfill_at, **index_fields(scheduled)}
        await db["fulfillment_orders"].update_one({"_id": fo.id}, {"$set": fields})
    reports = await asyncio.gather(sweep_pass(first), sweep_pass(second))
    assert sum(report.opened for report in reports) == 8
    for order in orders:
        assert (await outbox_types(db, order.id)).count("fulfillment_order.opened") == 1


async def test_two_replicas_reroute_each_out_of_stock_hold_once_when_stock_arrives(db: Any) -> None:
    first, second = replica(db), replica(db)
    await first.location_updated(Location(id="wh", name="wh", priority=1), T0)
    orders = [paid("MUG", 2) for _ in range(6)]
    for order in orders:
        await first.route_paid_order(order, f"paid-{order.id}")
    assert await db["fulfillment_orders"].count_documents({"out_of_stock": True}) == 6

    # Stock arrives in the view of both (one database), then both retry at once.
    await first.stock.record(InventoryLevel(sku="MUG", location_id="wh", on_hand=8, reserved=0, available=8), now_iso())
    counts = await asyncio.gather(first.retry_out_of_stock(), second.retry_out_of_stock())
    assert sum(counts) == 6
    for order in orders:
        live = await first.fulfillment_orders.find({"order_id": order.id, "status": {"$in": ["OPEN", "ON_HOLD"]}})
        assert [(fo.status, fo.location_id) for fo in live] == [("OPEN", "wh")]
        routing = await first.routings.get(order.id)
        assert routing is not None and len(routing.entries) == 2


async def test_sweep_creates_what_a_crash_left_planned_but_not_created(db: Any) -> None:
    service = replica(db)
    await stocked(service, "wh", "MUG", 5)
    order = paid("MUG", 2)
    context = await service.context(["MUG"])
    # The crash: the plan is stored, the fulfillment order never created.
    await service.routings.apply(order.id, lambda current: order_routing.route_paid_order(current, order, context, T0))
    assert await service.fulfillment_orders.find({"order_id": order.id}) == []
    report = await sweep_pass(service)
    assert report.repaired == 1
    assert [fo.location_id for fo in await service.fulfillment_orders.find({"order_id": order.id})] == ["wh"]
    assert (await sweep_pass(service)).repaired == 0


async def test_sweep_finishes_a_reroute_a_crash_interrupted(db: Any) -> None:
    service = replica(db)
    await stocked(service, "wh", "MUG", 5)
    order = paid("MUG", 2)
    await service.route_paid_order(order, "paid-1")
    (fo,) = await service.fulfillment_orders.find({"order_id": order.id})
    await service.location_updated(Location(id="backup", name="backup", priority=2), T0)
    await service.stock.record(
        InventoryLevel(sku="MUG", location_id="backup", on_hand=5, reserved=0, available=5), now_iso()
    )
    # The crash: the fulfillment order gave way, its replacement was never planned.
    await service.fulfillment_orders.apply(
        fo.id, lambda current: lifecycle.reservation_failed(current, "wh", "MUG", T0), missing="raise"
    )
    report = await sweep_pass(service)
    assert report.repaired >= 1
    live = await service.fulfillment_orders.find({"order_id": order.id, "status": "OPEN"})
    assert [fo.location_id for fo in live] == ["backup"]
    replaced = await service.fulfillment_orders.get(fo.id)
    assert replaced is not None and replaced.reroute_pending is False


async def test_redelivered_paid_event_creates_nothing_twice_even_if_stock_changed(db: Any) -> None:
    service = replica(db)
    await stocked(service, "wh", "MUG", 5)
    order = paid("MUG", 2)
    await service.route_paid_order(order, "paid-1")
    await service.stock.record(
        InventoryLevel(sku="MUG", location_id="wh", on_hand=0, reserved=0, available=0), now_iso()
    )
    await service.route_paid_order(order, "paid-1")
    fos = await service.fulfillment_orders.find({"order_id": order.id})
    assert [(fo.status, fo.location_id) for fo in fos] == [("OPEN", "wh")]
    assert (await outbox_types(db, order.id)) == ["fulfillment_order.created"]


async def test_order_cancelled_while_a_reroute_is_planned_leaves_nothing_open(db: Any) -> None:
    service = replica(db)
    await stocked(service, "wh", "MUG", 5)
    order = paid("MUG", 2)
    context = await service.context(["MUG"])
    await service.routings.apply(order.id, lambda current: order_routing.route_paid_order(current, order, context, T0))
    await service.cancel_order(order, "the order was cancelled (customer)", "cancel-1")
    await service.materialise(order.id)  # a late materialisation finds the tombstone
    (fo,) = await service.fulfillment_orders.find({"order_id": order.id})
    assert fo.status == "CANCELLED" and await outbox_types(db, order.id) == []


async def test_arriving_stock_goes_to_the_oldest_holds_first_and_is_not_offered_twice(db: Any) -> None:
    service = replica(db)
    await service.location_updated(Location(id="wh", name="wh", priority=1), T0)
    orders = [paid("MUG", 2) for _ in range(3)]
    for order in orders:
        await service.route_paid_order(order, f"paid-{order.id}")
    level = InventoryLevel(sku="MUG", location_id="wh", on_hand=3, reserved=0, available=3)
    await service.stock.record(level, now_iso())
    assert await service.retry_out_of_stock(["MUG"]) == 2  # the third finds nothing left
    placed = []
    for order in orders:
        live = await service.fulfillment_orders.find({"order_id": order.id, "status": {"$in": ["OPEN", "ON_HOLD"]}})
        placed.append(sorted((fo.status, fo.location_id or "-", fo.line_items[0].quantity) for fo in live))
    assert placed == [
        [("OPEN", "wh", 2)],
        [("ON_HOLD", "-", 1), ("OPEN", "wh", 1)],  # what arrived ships, the rest waits
        [("ON_HOLD", "-", 2)],
    ]


async def test_a_sweep_interval_stored_before_the_bounds_existed_is_not_run_with(db: Any) -> None:
    """`PUT /settings {"sweep_interval_seconds": 1e-300}` made the sweep run 36 passes/s; a shop
    that stored it then must not keep spinning now."""
    service = replica(db, sweep_interval_seconds=30)
    await db["settings"].insert_one(
        {"_id": "shop", "id": "shop", "version": 1, "sweep_interval_seconds": 1e-300, "auto_fulfill": 0,
         "post_purchase_hold_seconds": 120}
    )  # fmt: skip
    settings = await service.shop_settings()
    assert (settings.sweep_interval_seconds, settings.auto_fulfill, settings.post_purchase_hold_seconds) == (
        30,
        False,
        120,
    )
