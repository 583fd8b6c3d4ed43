"""Inventory at scale, against the real embedded store (issue 15): a hot sku's stock document
stays the size of what is live, an order costs a handful of store commands, and history kept in
the records (not in the stock) keeps every guarantee under concurrency.

No broker: events stay in the documents' outboxes, drained by a relay that publishes nowhere
where a test needs them gone.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient, monitoring

from services.inventory.app import bootstrap
from services.inventory.mapping import RECORDS
from services.inventory.store import INDEXES
from shared.events import CloudEvent
from shared.outbox import OutboxRelay
from shared.query_log import filters_of
from tests.integration.test_inventory_store import CrashOnce, build, cancellation, fo, shipment, stocked


class Commands(monitoring.CommandListener):
    """Counts the commands a client sends, by (collection, command), and keeps their filters."""

    def __init__(self) -> None:
        self.sent: Counter[tuple[str, str]] = Counter()
        self.filters: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else ""
        self.sent[collection, event.command_name] += 1
        for query in filters_of(event.command_name, event.command):
            self.filters.append((collection, event.command_name, query))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def counted(mongo_uri: str, db: Any) -> AsyncIterator[tuple[Any, Commands]]:
    """The test's database through a client whose commands are counted."""
    commands = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, event_listeners=[commands])
    try:
        yield client[db.name], commands
    finally:
        await client.close()


async def publish_nowhere(_: CloudEvent) -> None:
    return None


async def stock_document_size(db: Any, location_id: str, sku: str) -> int:
    doc = await db["stock"].find_one({"_id": f"{location_id}/{sku}"})
    return len(bson.encode(doc))


async def test_a_hot_skus_stock_document_is_the_same_size_after_2000_fulfilments_as_after_10(db: Any) -> None:
    """Issue 15: "Every fulfilment adds an entry to the stock document of its (sku, location) in
    `commits`, forever (~192 bytes each) ... after 10,000 sales of one sku at one location the
    document is 1.9 MB". A stock document holds what is live and stays the same size however many
    units were ever sold; what each fulfilment took lives in its fulfillment order's record."""
    inventory = build(db)
    await stocked(inventory, **{"MUG-1": 1_000_000})
    relay = OutboxRelay([db["stock"], db["reservations"]], publish_nowhere, poll_seconds=60)

    async def fulfil(first: int, last: int) -> None:
        for n in range(first, last):  # ids of one length: a longer id is not a bigger stock
            request = fo(f"fo-{n:05d}", order_id=f"order-{n:05d}")
            await inventory.commit(f"e-{n}", shipment(f"f-{n:05d}", request, **{"MUG-1": 1}))
            if n % 20 == 19:
                # As the service's relay does: outboxes are not history. (Often enough that no outbox
                # holds 127 events or more: the embedded store silently ignores a $unset of as many
                # fields, so the relay could not clear them.)
                await relay.relay_once()
        await relay.relay_once()

    await fulfil(0, 10)
    after_10 = await stock_document_size(db, "wh-1", "MUG-1")
    await fulfil(10, 2_000)
    after_2000 = await stock_document_size(db, "wh-1", "MUG-1")

    assert after_2000 == after_10
    level = await inventory.stock.level("wh-1", "MUG-1")
    assert (level.on_hand, level.reserved, len(level.marks)) == (1_000_000 - 2_000, 0, 1)  # the last one's mark
    # The history is in the records, one per fulfillment order, and cancel/restock still find it.
    record = await inventory.reservations.get("fo-01999")
    assert record is not None and RECORDS.dump(record)["fulfillments"] == [
        {"fulfillment_id": "f-01999", "location_id": "wh-1", "sku": "MUG-1", "quantity": 1, "state": "committed"}
    ]
    await inventory.cancel_order("e-cancel", cancellation("order-00005", restock=True))
    assert (await inventory.stock.level("wh-1", "MUG-1")).on_hand == 1_000_000 - 1_999


async def test_an_order_costs_inventory_seven_store_commands(counted: tuple[Any, Commands]) -> None:
    """Issue 15: "Inventory makes ~25 sequential round trips per order". Reserve (record, stock,
    record), commit (record with the order's cancellation note, stock, record) and close (record):
    the location and the stock are served from what the process last read or wrote (proven current
    by the conditional write), and the answers ride with the stock's level events (the records
    have nothing to relay)."""
    db, commands = counted
    inventory = build(db)
    await stocked(inventory, **{"MUG-1": 100})
    await inventory.reserve("warm-up", fo("fo-0"))

    commands.sent.clear()
    request = fo("fo-1", order_id="order-1")
    await inventory.reserve("e-1", request)
    reserved = sum(commands.sent.values())
    await inventory.commit("e-2", shipment("f-1", request, **{"MUG-1": 1}))
    closed = request.model_copy(update={"status": "CLOSED"})
    await inventory.release("e-3", closed)

    assert (reserved, sum(commands.sent.values())) == (3, 7), commands.sent
    assert commands.sent == {
        ("reservations", "find"): 3, ("reservations", "insert"): 1, ("reservations", "update"): 1,
        ("stock", "update"): 2,
    }  # fmt: skip
    record = await db["reservations"].find_one({"_id": "fo-1"})
    assert record["outbox"] == {} and not record["outbox_pending"]
    stock = await db["stock"].find_one({"_id": "wh-1/MUG-1"})
    types = [entry["event"]["type"] for entry in sorted(stock["outbox"].values(), key=lambda entry: entry["seq"])]
    # One level event per change, each followed by the answer it caused.
    assert types[-4:] == [
        "inventory.level_changed", "inventory.reserved", "inventory.level_changed", "inventory.committed",
    ]  # fmt: skip


async def test_a_process_that_remembers_a_stale_level_re_reads_before_deciding(db: Any) -> None:
    """A replica decides on what it last saw of a stock only when its write can prove it current."""
    first, second = build(db), build(db)
    await stocked(first, **{"MUG-1": 1})
    await first.reserve("e-1", fo("fo-1"))
    await first.release("e-2", fo("fo-1", status="CANCELLED"))  # first remembers: 1 available
    await second.reserve("e-3", fo("fo-2"))  # meanwhile another replica took it

    await first.reserve("e-4", fo("fo-3"))  # stale memory: the write fails, re-read, shortage

    record = await first.reservations.get("fo-3")
    assert record is not None and record.status == "reservation_failed"
    level = await first.stock.level("wh-1", "MUG-1")
    assert (level.reserved, sorted(level.holds)) == (1, ["fo-2"])
    # ... and a "nothing to do" decided on memory is checked on the stored stock: fo-2's hold is
    # let go although the first replica never saw it.
    await first.release("e-5", fo("fo-2", status="CANCELLED"))
    assert (await first.stock.level("wh-1", "MUG-1")).reserved == 0


async def test_shipments_and_restocking_cancels_racing_on_the_same_fulfillment_orders_lose_nothing(
    db: Any,
) -> None:
    """A shipment and its order's cancellation (with restock) arrive on different topics, so they
    may be handled at once by two replicas: whichever writes the record second decides again on
    what the first did. Every shipped unit comes back, once."""
    setup = build(db)
    await stocked(setup, **{"MUG-1": 100})
    orders = [f"order-{n}" for n in range(12)]
    requests = [fo(f"fo-{n}", order_id=order_id, lines={"MUG-1": 3}) for n, order_id in enumerate(orders)]
    for request in requests:
        await setup.reserve(f"reserve-{request.id}", request)

    async def ship(request: Any) -> None:
        await build(db).commit(f"ship-{request.id}", shipment(f"f-{request.id}", request, **{"MUG-1": 2}))

    async def cancel(order_id: str) -> None:
        await build(db).cancel_order(f"cancel-{order_id}", cancellation(order_id, restock=True))

    await asyncio.gather(*(ship(r) for r in requests), *(cancel(o) for o in orders))
    # Redelivered, both, in the other order: nothing moves twice.
    await asyncio.gather(*(cancel(o) for o in orders), *(ship(r) for r in requests))

    level = await setup.stock.level("wh-1", "MUG-1")
    assert (level.on_hand, level.reserved, dict(level.holds)) == (100, 0, {})
    for request in requests:
        record = await setup.reservations.get(request.id)
        assert record is not None
        assert [(c.quantity, c.state) for c in record.fulfillments] == [(2, "restocked")]
        assert record.holds == ()


async def test_a_stock_forgets_marks_its_records_have_at_its_next_change(db: Any) -> None:
    inventory = build(db)
    await stocked(inventory, **{"MUG-1": 10})
    request = fo("fo-1", lines={"MUG-1": 2})
    await inventory.reserve("e-1", request)
    await inventory.commit("e-2", shipment("f-1", request, **{"MUG-1": 2}))
    marked = await db["stock"].find_one({"_id": "wh-1/MUG-1"})
    assert list(marked["marks"]) == ["committed:f-1"]

    await inventory.adjust("wh-1", "MUG-1", 1, "received")

    assert (await db["stock"].find_one({"_id": "wh-1/MUG-1"}))["marks"] == {}


async def test_a_mark_no_record_ever_took_in_is_forgotten_past_the_redelivery_horizon(db: Any) -> None:
    """A crash between the stock write and the record write leaves a mark; its request is normally
    redelivered and the record takes it in. If that never comes (the broker's retention passed),
    the mark is forgotten at the stock's next change rather than kept forever."""
    crashing = build(db, CrashOnce("inventory.after_stock_update"))
    await stocked(crashing, **{"MUG-1": 10})
    request = fo("fo-1", lines={"MUG-1": 2})
    with pytest.raises(SystemExit):
        await crashing.commit("e-1", shipment("f-1", request, **{"MUG-1": 2}))
    assert list((await db["stock"].find_one({"_id": "wh-1/MUG-1"}))["marks"]) == ["committed:f-1"]

    later = bootstrap(db, lambda *_: None, retention=timedelta(seconds=0))
    await later.adjust("wh-1", "MUG-1", 1, "received")

    stored = await db["stock"].find_one({"_id": "wh-1/MUG-1"})
    assert (stored["on_hand"], stored["marks"]) == (9, {})


async def test_every_query_inventory_sends_is_served_by_an_index(counted: tuple[Any, Commands]) -> None:
    """Issue 15: "no collection but two has an index for its queries". Every filter inventory's
    requests send is by `_id`, or explained by the store as a search of an index it creates at
    start (INDEXES), in a shape the embedded store can serve from one ({"$eq": ...}, no $or...)."""
    db, commands = counted
    for collection, models in INDEXES.items():
        await db[collection].create_indexes(models)
    inventory = build(db)
    await stocked(inventory, **{"MUG-1": 10, "TEE-1": 5})
    await inventory.locations.reorder(["wh-1"])
    request = fo("fo-1", order_id="order-1", lines={"MUG-1": 2, "TEE-1": 1})
    await inventory.reserve("e-1", request)
    await inventory.reserve("e-2", fo("fo-2", order_id="order-1", lines={"MUG-1": 1}))
    await inventory.commit("e-3", shipment("f-1", request, **{"MUG-1": 1}))
    await inventory.cancel_commit("e-4", shipment("f-1", request, **{"MUG-1": 1}), request)
    await inventory.cancel_order("e-5", cancellation("order-1", restock=True))
    await inventory.release("e-6", fo("fo-2", order_id="order-1", status="CANCELLED", lines={"MUG-1": 1}))
    await inventory.stock_of("MUG-1")
    await inventory.reservations_of("order-1")
    await inventory.locations.all()

    by_index = [(c, command, f) for c, command, f in commands.filters if f and "_id" not in f]
    assert {c for c, _, _ in by_index} == {"stock", "reservations"}, commands.filters
    for collection, command, filter_ in by_index:
        assert all(isinstance(v, dict) and set(v) <= {"$eq"} for v in filter_.values()), (collection, filter_)
        plan = await db.command("explain", {"find": collection, "filter": filter_})
        assert "USING INDEX" in str(plan["queryPlanner"]), (collection, command, filter_, plan)
