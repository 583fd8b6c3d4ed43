"""What fulfillment asks of the store, counted command by command against the real embedded store
(issue 15: "Fulfillment costs ~25 store commands per order today [...] fulfillment makes ~6
finds/s idling"): an order's handlers, the sweep, the bulk-job worker at rest, the caches, the
stock view, the out-of-stock holds found by sku, and the upgrade of what an earlier version stored.

No broker: events stay in the documents' outboxes. Commands are counted by pymongo's command
monitoring on a client of the test's own, as the services count them (`store_commands_total`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import pytest
from pymongo import AsyncMongoClient, monitoring

from services.fulfillment import upgrade
from services.fulfillment.app import FulfillmentSettings, bootstrap
from services.fulfillment.application import sweep as sweep_module
from services.fulfillment.application import sweep_pass
from services.fulfillment.bulk import BulkJobs
from services.fulfillment.domain import order_routing
from services.fulfillment.domain.bulk_job import BulkAction
from services.fulfillment.handlers import build_subscriptions
from services.fulfillment.lookups import (
    KNOWN_LOCATIONS,
    KNOWN_STOCK,
    SHOP_SETTINGS,
    LocationDirectory,
    SettingsStore,
    ShopSettings,
    StockView,
)
from services.fulfillment.store import BULK_JOBS, LEGACY_FULFILLMENTS, OUT_OF_STOCK_HOLDS
from shared.auth import Authenticator
from shared.catalog import InventoryLevel, InventoryReservation, Location, OrderCreated, OrderWaitingChanged, StockLine
from shared.events import new_event
from shared.store import AggregateStore, Document, now_iso
from tests.conftest import eventually
from tests.fulfillment_documents import derived_fields
from tests.integration.test_fulfillment_sweep import T0, DatabaseStores, paid, replica


class Commands(monitoring.CommandListener):
    """Every command sent, by (collection, command)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        if isinstance(target, str):
            self.counts[target, event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take(self) -> Counter[tuple[str, str]]:
        """What was sent since the last take."""
        taken, self.counts = self.counts, Counter()
        return taken


@pytest.fixture
async def counted(db: Any, mongo_uri: str) -> AsyncIterator[tuple[Any, Commands]]:
    """The test's database through a client that counts what it sends."""
    commands = Commands()
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_uri, event_listeners=[commands])
    try:
        yield client[db.name], commands
    finally:
        await client.close()


def nothing(*_: object) -> None:
    return None


def level(sku: str, on_hand: int, reserved: int, seq: int, location_id: str = "wh") -> InventoryLevel:
    return InventoryLevel(
        sku=sku, location_id=location_id, on_hand=on_hand, reserved=reserved, available=on_hand - reserved, seq=seq
    )


async def test_a_paid_order_costs_fulfillment_six_store_commands_from_paid_to_committed(
    counted: tuple[Any, Commands],
) -> None:
    """Was ~25 per order: settings and locations read for every order, the plan and each
    fulfillment order read before being written and read again after, a stock snapshot read and
    written for every change. Now: the stock for routing (one lookup by key), the plan and the
    fulfillment order (an insert each), the reservation (the fulfillment order read and written),
    the reservation's stock snapshot (one conditional write), the commit's (none: it leaves
    available as it was). Settings and locations come from memory."""
    db, commands = counted
    service = replica(db, auto_fulfill=True)
    await service.location_updated(Location(id="wh", name="wh", priority=1), T0)
    await service.stock_level_changed(level("MUG", 10, 0, seq=1), now_iso())
    await service.context(["MUG"])  # settings and locations in memory, as on a running replica
    commands.take()

    order = paid("MUG")
    await service.route_paid_order(order, f"paid-{order.id}")
    assert commands.take() == {
        ("stock_view", "find"): 1,
        ("routings", "insert"): 1,
        ("fulfillment_orders", "insert"): 1,
    }

    (fo,) = await service.fulfillment_orders.find({"order_id": {"$eq": order.id}})
    commands.take()
    reservation = InventoryReservation(
        order_id=order.id, fulfillment_order_id=fo.id, location_id="wh", lines=[StockLine(sku="MUG", quantity=1)]
    )
    await service.reservation_confirmed(reservation, f"reserved-{fo.id}")
    assert commands.take() == {("fulfillment_orders", "find"): 1, ("fulfillment_orders", "update"): 1}
    closed = await service.fulfillment_orders.get(fo.id)
    assert closed is not None and closed.status == "CLOSED", "fulfilled at once"
    commands.take()

    await service.stock_level_changed(level("MUG", 10, 1, seq=2), now_iso())  # reserved
    await service.stock_level_changed(level("MUG", 9, 0, seq=3), now_iso())  # committed: available unchanged
    assert commands.take() == {("stock_view", "findAndModify"): 1}
    assert (await service.stock.available(["MUG"], ["wh"])) == {("wh", "MUG"): 9}


async def test_the_pack_run_keeps_each_orders_event_in_one_write_without_a_read(
    counted: tuple[Any, Commands],
) -> None:
    """Issue 15 ("store operations per order at most 40"): the pack run's view of an order
    (pack_orders) was read before every write, four commands per paid order. Now order.created is
    one insert, and a later snapshot that neither cancels nor re-packs the order (order.paid,
    order.waiting_changed) one conditional write that keeps the newer snapshot; a redelivery
    changes nothing."""
    db, commands = counted
    app = bootstrap(DatabaseStores(db), FulfillmentSettings(auto_fulfill=True))
    handlers = build_subscriptions(app.fulfillment, cast(Authenticator, None), app.pack_runs).handlers
    order = paid("MUG")
    await handlers["order.created"](new_event("orders", "order.created", order.id, OrderCreated(order=order)))
    assert commands.take() == {("pack_orders", "insert"): 1}

    waiting = OrderWaitingChanged(order=order.model_copy(update={"waiting": True}))
    marked = new_event("orders", "order.waiting_changed", order.id, waiting)
    await handlers["order.waiting_changed"](marked)
    assert commands.take() == {("pack_orders", "update"): 1}
    await handlers["order.waiting_changed"](marked)  # redelivered
    assert commands.take() == {("pack_orders", "update"): 1, ("pack_orders", "find"): 1}
    stale = new_event("orders", "order.waiting_changed", order.id, OrderWaitingChanged(order=order))
    await handlers["order.waiting_changed"](stale.model_copy(update={"time": marked.time - timedelta(seconds=5)}))
    commands.take()

    view = await app.pack_runs.views.get(order.id)
    assert view is not None and view.order.waiting and view.pack_pending, "the newer snapshot is kept"


async def test_asking_for_the_pack_runs_turn_while_it_is_taken_is_one_write(counted: tuple[Any, Commands]) -> None:
    """Issue 15 ("none while idle beyond one indexed probe per collection per poll"): every replica
    asked for the periodic pack run's turn each second with an update and then an insert that
    failed on the lease already stored (two commands a second, idling). The lease is never removed:
    once a replica knows it is stored, asking is the conditional update alone."""
    db, commands = counted
    first, second = (bootstrap(DatabaseStores(db), FulfillmentSettings()).pack_runs for _ in range(2))
    assert await first.take_turn(900, "first")
    assert not await second.take_turn(900, "second")
    commands.take()
    for _ in range(3):
        assert not await first.take_turn(900, "first")
        assert not await second.take_turn(900, "second")
    assert commands.take() == {("pack_run_leases", "update"): 6}


async def test_the_sweep_confirms_many_plans_in_one_write(
    counted: tuple[Any, Commands], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan is no longer marked materialised by a second write per order: the sweep checks the
    plans that are due and marks them a page at a time, creating what a crash left out; a pass
    goes on until none is left."""
    monkeypatch.setattr(order_routing, "MATERIALISE_GRACE_SECONDS", 0.0)  # due at once
    monkeypatch.setattr(sweep_module, "BATCH", 4)  # seven plans: two pages
    db, commands = counted
    service = replica(db)
    await service.location_updated(Location(id="wh", name="wh", priority=1), T0)
    await service.stock_level_changed(level("MUG", 100, 0, seq=1), now_iso())
    orders = [paid("MUG") for _ in range(6)]
    for order in orders:
        await service.route_paid_order(order, f"paid-{order.id}")
    crashed = paid("MUG")  # planned, then the process died before creating its fulfillment order
    context = await service.context(["MUG"])
    await service.routings.apply(
        crashed.id, lambda current: order_routing.route_paid_order(current, crashed, context, T0)
    )
    commands.take()

    report = await sweep_pass(service)
    assert report.repaired == 1
    sent = commands.take()
    assert sent["routings", "find"] == 2 and sent["routings", "update"] == 2, sent
    assert await db["routings"].count_documents({"materialise_check_at": {"$ne": None}}) == 0
    assert len(await service.fulfillment_orders.find({"order_id": {"$eq": crashed.id}})) == 1
    assert (await sweep_pass(service)).repaired == 0


async def test_the_bulk_job_worker_does_not_poll_and_a_new_job_wakes_it(counted: tuple[Any, Commands]) -> None:
    """It looked for running jobs every second (bulk_jobs 3 finds/s idling, with the relay's):
    now only once per lease (for a crashed replica's jobs), and a job started here wakes it."""
    db, commands = counted
    service = replica(db)
    jobs = DatabaseStores(db).store("bulk_jobs", mapping=BULK_JOBS)
    worker = BulkJobs(jobs, service, owner="only", lease_seconds=30)
    commands.take()
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(2.5)
        assert commands.take()["bulk_jobs", "find"] == 1, "one probe at start, then it waits"
        job = await worker.start(BulkAction.HOLD, ["no-such-fulfillment-order"], {"reason": "OTHER"})

        async def completed() -> bool:
            done = await worker.get(job.id)
            return bool(done and done.status == "COMPLETED")

        await eventually(completed, timeout=10)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_settings_come_from_memory_and_a_change_reaches_another_replica_within_the_cache_time(
    counted: tuple[Any, Commands],
) -> None:
    db, commands = counted
    first = SettingsStore(
        AggregateStore(db["settings"], nothing, mapping=SHOP_SETTINGS), ShopSettings(), cache_seconds=3
    )
    second = SettingsStore(
        AggregateStore(db["settings"], nothing, mapping=SHOP_SETTINGS), ShopSettings(), cache_seconds=3
    )
    assert not (await second.get()).auto_fulfill
    commands.take()
    for _ in range(20):
        await second.get()
    assert commands.take() == {}, "served from memory"
    assert (await first.update({"auto_fulfill": True})).auto_fulfill
    assert (await first.get()).auto_fulfill, "the replica that changed it sees it at once"
    assert not (await second.get()).auto_fulfill, "another replica: within its cache time"

    async def reached() -> bool:
        return (await second.get()).auto_fulfill

    await eventually(reached, timeout=10)


async def test_locations_come_from_memory_and_news_of_one_is_seen_at_once(counted: tuple[Any, Commands]) -> None:
    db, commands = counted
    locations = LocationDirectory(AggregateStore(db["locations"], nothing, mapping=KNOWN_LOCATIONS), cache_seconds=60)
    other_replica = LocationDirectory(
        AggregateStore(db["locations"], nothing, mapping=KNOWN_LOCATIONS), cache_seconds=60
    )
    await locations.record(Location(id="a", name="A", priority=1), T0)
    assert [location.id for location in await locations.all()] == ["a"]
    assert await other_replica.all() != []  # loaded now, kept for a minute
    commands.take()
    await locations.all()
    assert commands.take() == {}
    await locations.record(Location(id="b", name="B", priority=2), T0)
    assert sorted(location.id for location in await locations.all()) == ["a", "b"], "its own news at once"
    assert (await other_replica.get("b")) is not None, "an id it does not know yet is looked up"


async def test_stock_snapshots_are_written_only_when_available_changes_and_one_round_trip_each(
    counted: tuple[Any, Commands],
) -> None:
    db, commands = counted
    view = StockView(AggregateStore(db["stock_view"], nothing, mapping=KNOWN_STOCK))
    await view.record(level("MUG", 5, 0, seq=1), now_iso())  # the first of this stock: read, then insert
    commands.take()
    assert await view.record(level("MUG", 8, 0, seq=2), now_iso()), "more available"
    assert commands.take() == {("stock_view", "findAndModify"): 1}
    assert not await view.record(level("MUG", 9, 1, seq=3), now_iso())  # the same available
    assert not await view.record(level("MUG", 10, 2, seq=4), now_iso())
    assert commands.take() == {}
    assert not await view.record(level("MUG", 10, 5, seq=5), now_iso())
    assert commands.take() == {("stock_view", "findAndModify"): 1}
    assert await view.available(["MUG"]) == {("wh", "MUG"): 5}
    # Another replica, which trusts nothing of its own, writes what changes and ignores what is older.
    other = StockView(AggregateStore(db["stock_view"], nothing, mapping=KNOWN_STOCK), seen_seconds=0)
    assert not await other.record(level("MUG", 10, 5, seq=6), now_iso())
    assert not await other.record(level("MUG", 99, 0, seq=4), now_iso())
    assert await view.available(["MUG"]) == {("wh", "MUG"): 5}


async def test_stock_arriving_for_a_sku_finds_its_out_of_stock_holds_by_index(db: Any) -> None:
    """Was `{"skus": {"$in": [...]}}` over every fulfillment order (a scan): now the holds waiting
    for a sku are found in `out_of_stock_holds`; entries of holds that no longer wait go away,
    and a hold without an entry (a crash between the two writes) is still retried by the sweep."""
    service = replica(db)
    await service.location_updated(Location(id="wh", name="wh", priority=1), T0)
    orders = [paid("MUG", 2), paid("CUP", 1)]
    for order in orders:
        await service.route_paid_order(order, f"paid-{order.id}")
    assert sorted([entry["sku"] async for entry in db[OUT_OF_STOCK_HOLDS].find({})]) == ["CUP", "MUG"]

    await service.stock_level_changed(level("MUG", 5, 0, seq=1), now_iso())
    mug = await service.fulfillment_orders.find({"order_id": {"$eq": orders[0].id}, "status": {"$eq": "OPEN"}})
    assert [(fo.location_id, fo.line_items[0].quantity) for fo in mug] == [("wh", 2)]
    await service.stock_level_changed(level("MUG", 6, 0, seq=2), now_iso())  # finds the replaced one: forgotten
    assert sorted([entry["sku"] async for entry in db[OUT_OF_STOCK_HOLDS].find({})]) == ["CUP"]

    await db[OUT_OF_STOCK_HOLDS].delete_many({})  # the crash: the hold was never entered
    await service.stock.record(level("CUP", 1, 0, seq=1), now_iso())
    assert await service.retry_out_of_stock(["CUP"]) == 0
    assert (await sweep_pass(service)).rerouted == 1


async def test_a_fulfillment_is_found_by_its_id_through_its_fulfillment_order_s_key(db: Any) -> None:
    """Was `{"fulfillments.<id>": {"$exists": true}}`: a scan of every fulfillment order."""
    service = replica(db, auto_fulfill=True)
    await service.location_updated(Location(id="wh", name="wh", priority=1), T0)
    await service.stock_level_changed(level("MUG", 5, 0, seq=1), now_iso())
    order = paid("MUG")
    await service.route_paid_order(order, f"paid-{order.id}")
    (fo,) = await service.fulfillment_orders.find({"order_id": {"$eq": order.id}})
    reservation = InventoryReservation(
        order_id=order.id, fulfillment_order_id=fo.id, location_id="wh", lines=[StockLine(sku="MUG", quantity=1)]
    )
    await service.reservation_confirmed(reservation, "reserved-1")
    shipped = await service.fulfillment_orders.get(fo.id)
    assert shipped is not None
    (fulfillment_id,) = shipped.fulfillments
    assert fulfillment_id == f"{fo.id}_1"
    assert await service.fulfillment_order_holding(fulfillment_id) == shipped
    for unknown in (f"{fo.id}_2", "no-such-fulfillment", "missing_1", "_1"):
        assert await service.fulfillment_order_holding(unknown) is None


async def test_the_upgrade_makes_what_an_earlier_version_stored_findable_once(db: Any) -> None:
    """Documents stored before the new query fields existed: a scheduled fulfillment order due to
    open, a fulfillment with an id of the old form, a plan left half materialised, an out-of-stock
    hold. After the upgrade the sweep, the lookups and the listing find them as if just written."""
    service = replica(db)
    await service.location_updated(Location(id="wh", name="wh", priority=1), T0)
    await service.stock_level_changed(level("MUG", 5, 0, seq=1), now_iso())
    scheduled, shipped, held, half = paid("MUG"), paid("MUG"), paid("HAT"), paid("MUG")
    for order in (scheduled, shipped, held):
        await service.route_paid_order(order, f"paid-{order.id}")
    context = await service.context(["MUG"])
    await service.routings.apply(half.id, lambda current: order_routing.route_paid_order(current, half, context, T0))
    ids: dict[str, str] = {}
    for order in (scheduled, shipped, held):
        (fo,) = await service.fulfillment_orders.find({"order_id": {"$eq": order.id}})
        ids[order.id] = fo.id
    legacy_fulfillment = "2f1e5c3a-0000-5000-8000-000000000001"
    legacy = {"id": legacy_fulfillment, "order_id": shipped.id, "fulfillment_order_id": ids[shipped.id],
              "location_id": "wh", "status": "SUCCESS", "line_items": [], "created_at": T0,
              "updated_at": T0}  # fmt: skip
    new_fields = {"sort_key": "", "opens_at_epoch": "", "upsell_release_epoch": ""}
    await db["fulfillment_orders"].update_many({}, {"$unset": new_fields})
    await db["fulfillment_orders"].update_one(
        {"_id": ids[scheduled.id]}, {"$set": {"status": "SCHEDULED", "fulfill_at": T0}}
    )
    await db["fulfillment_orders"].update_one(
        {"_id": ids[shipped.id]},
        {"$set": {f"fulfillments.{legacy_fulfillment}": legacy}},
    )
    await db["routings"].update_many({}, {"$unset": {"materialise_check_at": ""}})
    await db[OUT_OF_STOCK_HOLDS].delete_many({})

    assert await upgrade.upgrade(db) >= 4
    assert await upgrade.upgrade(db) == 0, "once"
    report = await sweep_pass(service)
    assert (report.opened, report.repaired) == (1, 1)
    holding = await service.fulfillment_order_holding(legacy_fulfillment)
    assert holding is not None and holding.id == ids[shipped.id]
    assert await db[LEGACY_FULFILLMENTS].count_documents({}) == 1
    assert [entry["sku"] async for entry in db[OUT_OF_STOCK_HOLDS].find({})] == ["HAT"]
    listed = await db["fulfillment_orders"].find({"sort_key": {"$gt": ""}}).to_list()
    assert {fo["_id"] for fo in listed} >= set(ids.values())
    assert all(fo["sort_key"] == derived_fields({**fo, "id": fo["_id"]})["sort_key"] for fo in listed)


async def test_the_upgrade_leaves_a_document_it_cannot_index_and_upgrades_the_others(db: Any) -> None:
    """Review finding: a stored fulfillment order that loads but whose time cannot be read (a
    SCHEDULED one with `fulfill_at: "2024-13-01"`) made the upgrade raise on every retry, so the
    documents after it never got their fields and the marker was never written."""
    service = replica(db)
    await service.location_updated(Location(id="wh", name="wh", priority=1), T0)
    await service.stock_level_changed(level("MUG", 5, 0, seq=1), now_iso())
    broken, fine = paid("MUG"), paid("MUG")
    for order in (broken, fine):
        await service.route_paid_order(order, f"paid-{order.id}")
    (bad,) = await service.fulfillment_orders.find({"order_id": {"$eq": broken.id}})
    await db["fulfillment_orders"].update_many({}, {"$unset": {"sort_key": ""}})
    await db["fulfillment_orders"].update_one(
        {"_id": bad.id}, {"$set": {"status": "SCHEDULED", "fulfill_at": "2024-13-01"}}
    )
    assert await upgrade.upgrade(db) >= 1
    left = await db["fulfillment_orders"].find({"sort_key": {"$exists": False}}, {"_id": 1}).to_list()
    assert [doc["_id"] for doc in left] == [bad.id]
    assert await db["migrations"].find_one({"_id": upgrade.MARKER}) is not None
