"""The pack run against the real embedded store (nx-27017), without a broker: what it moves to
packing, why it leaves the rest (step by step), that two replicas never move a fulfillment order
twice, the periodic run's lease, and an order edited in packing re-planned through routing.

Inventory is played by hand: a reservation is confirmed with `reservation_confirmed`, as its
inventory.reserved event would; events stay in the documents' outboxes, where the tests read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry

from services.fulfillment.app import FulfillmentApp, FulfillmentSettings, bootstrap
from services.fulfillment.application import actions
from services.fulfillment.application.editing import order_edited
from services.fulfillment.domain.fulfillment_orders import lifecycle
from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder, FulfillmentRequest, LineQuantity
from services.fulfillment.domain.pack_run import Outcome, PackDecision
from services.fulfillment.packer import Packer
from shared.catalog import HoldReason, InventoryLevel, InventoryReservation, OrderSnapshot, StockLine, Tracking
from shared.clock import now_iso
from tests.conftest import eventually
from tests.integration.test_fulfillment_sweep import T0, DatabaseStores, outbox_types, stocked


def service(db: Any) -> FulfillmentApp:
    return bootstrap(DatabaseStores(db), FulfillmentSettings())


def an_order(
    *lines: tuple[str, int], paid: bool = True, waiting: bool = False, email: str = "b@example.com", number: int = 1001
) -> OrderSnapshot:
    return OrderSnapshot.model_validate({
        "id": str(uuid.uuid4()), "customer": {"email": email, "name": "B"}, "currency": "SEK",
        "financial_status": "paid" if paid else "pending", "created_at": now_iso(), "number": number,
        "waiting": waiting,
        "line_items": [{"id": f"line-{sku}", "sku": sku, "title": sku, "quantity": quantity, "unit_price": "1"}
                       for sku, quantity in lines],
    })  # fmt: skip


async def placed(app: FulfillmentApp, order: OrderSnapshot, *, reserve: bool = True) -> list[FulfillmentOrder]:
    """The order as fulfillment learns it: created (and paid: routed), its stock reserved."""
    await app.pack_runs.order_seen(order, now_iso(), f"created-{order.id}")
    if order.financial_status != "paid":
        return []
    await app.fulfillment.route_paid_order(order, f"paid-{order.id}")
    await app.pack_runs.order_seen(order, now_iso(), f"paid-{order.id}")
    return [await reserved(app, fo) if reserve else fo for fo in await fos_of(app, order)]


async def reserved(app: FulfillmentApp, fo: FulfillmentOrder) -> FulfillmentOrder:
    if fo.location_id is None:
        return fo
    lines = [StockLine(sku=line.sku, quantity=line.quantity) for line in fo.line_items]
    news = InventoryReservation(order_id=fo.order_id, fulfillment_order_id=fo.id, location_id=fo.location_id,
                                lines=lines)  # fmt: skip
    await app.fulfillment.reservation_confirmed(news, f"reserved-{fo.id}")
    found = await app.fulfillment.fulfillment_orders.get(fo.id)
    assert found is not None
    return found


async def fos_of(app: FulfillmentApp, order: OrderSnapshot) -> list[FulfillmentOrder]:
    return await app.fulfillment.fulfillment_orders.find({"order_id": {"$eq": order.id}}, sort=[("sort_key", 1)])


def by_order(decisions: list[PackDecision]) -> dict[str, PackDecision]:
    return {decision.order_id: decision for decision in decisions}


async def test_a_pack_run_by_hand_moves_the_ready_order_and_names_each_reason_for_the_others(db: Any) -> None:
    """The warehouse day: orders paid (some short on stock, one waiting, one held, one draft), a
    pack run by hand whose report names each reason; a stock arrival, then the next run moves the
    short order on."""
    app = service(db)
    await stocked(app.fulfillment, "wh", "MUG", 10)
    ready = an_order(("MUG", 1))
    short = an_order(("TEA", 2))
    waiting = an_order(("MUG", 1), waiting=True)
    held = an_order(("MUG", 1))
    draft = an_order(("MUG", 1), paid=False, email="")
    unpaid = an_order(("MUG", 1), paid=False)
    for order in (ready, short, waiting, held, draft, unpaid):
        await placed(app, order)
    (held_fo,) = await fos_of(app, held)
    await actions.place_hold(app.fulfillment, held_fo.id, HoldReason.HIGH_RISK_OF_FRAUD, "check the id")

    report = await app.pack_runs.run()

    seen = by_order(report.decisions)
    assert {order_id: d.outcome for order_id, d in seen.items()} == {
        ready.id: Outcome.MOVED, short.id: Outcome.SHORT, waiting.id: Outcome.WAITING,
        held.id: Outcome.ON_HOLD, draft.id: Outcome.DRAFT, unpaid.id: Outcome.NOT_PAID,
    }  # fmt: skip
    assert seen[short.id].message == "line TEA short at location wh: 2 needed, 0 available"
    assert seen[held.id].message == "on hold: HIGH_RISK_OF_FRAUD (check the id) at wh"
    assert seen[unpaid.id].message == "not paid (financial status pending)"
    assert "waiting" in seen[waiting.id].message and "draft" in seen[draft.id].message
    assert [step.check for step in seen[held.id].steps] == ["draft", "paid", "waiting", "hold"]
    assert [(step.check, step.ok) for step in seen[ready.id].steps][-1] == ("pack", True)
    assert seen[ready.id].number == "#1001"
    (packed,) = await fos_of(app, ready)
    assert (packed.status, packed.warehouse_status, packed.packed_at is not None) == ("IN_PROGRESS", "packing", True)
    assert (await outbox_types(db, ready.id)).count("fulfillment_order.packing_started") == 1
    assert report.moved_fulfillment_orders == 1

    # The next run does not look at the packed order again; the others are still there.
    again = by_order((await app.pack_runs.run()).decisions)
    assert ready.id not in again and again[short.id].outcome == Outcome.SHORT

    # Stock arrives: the out-of-stock hold is re-routed, inventory reserves, the run moves it.
    level = InventoryLevel(sku="TEA", location_id="wh", on_hand=5, reserved=0, available=5)
    await app.fulfillment.stock_level_changed(level, now_iso())
    for fo in await fos_of(app, short):
        if fo.status == "OPEN":
            await reserved(app, fo)
    assert by_order((await app.pack_runs.run()).decisions)[short.id].outcome == Outcome.MOVED


async def test_two_replicas_running_the_pack_run_at_once_move_each_fulfillment_order_once(db: Any) -> None:
    first, second = service(db), service(db)
    await stocked(first.fulfillment, "wh", "MUG", 100)
    orders = [an_order(("MUG", 1)) for _ in range(10)]
    for order in orders:
        await placed(first, order)
    reports = await asyncio.gather(first.pack_runs.run(), second.pack_runs.run(), first.pack_runs.run())
    assert sum(report.moved_fulfillment_orders for report in reports) == 10
    for order in orders:
        assert (await outbox_types(db, order.id)).count("fulfillment_order.packing_started") == 1


async def test_the_periodic_run_is_one_replicas_turn_per_interval(db: Any) -> None:
    first, second = service(db), service(db)
    assert await first.pack_runs.take_turn(900, "first")
    assert not await second.pack_runs.take_turn(900, "second")
    assert not await first.pack_runs.take_turn(900, "first")
    assert await second.pack_runs.take_turn(0.0, "second")  # the interval shortened: it applies at once
    assert not await first.pack_runs.take_turn(900, "first")
    await db["pack_run_leases"].update_one({"_id": "pack-run"}, {"$set": {"taken_epoch": 0}})  # the interval ends
    assert await second.pack_runs.take_turn(900, "second")


async def test_a_partial_delivery_keeps_the_fulfillment_order_in_packing(db: Any) -> None:
    app = service(db)
    await stocked(app.fulfillment, "wh", "MUG", 10)
    await stocked(app.fulfillment, "wh", "TEA", 10)
    order = an_order(("MUG", 2), ("TEA", 1))
    (fo,) = await placed(app, order)
    await app.pack_runs.run()
    some = FulfillmentRequest(lines=[LineQuantity("line-MUG", 2)], tracking=Tracking(numbers=["P1", "P2"]))
    partly = await actions.fulfil(app.fulfillment, fo.id, some)
    assert (partly.status, partly.warehouse_status) == ("IN_PROGRESS", "packing")
    rest = await actions.fulfil(app.fulfillment, fo.id, FulfillmentRequest(tracking=Tracking(numbers=["P3"])))
    assert (rest.status, rest.warehouse_status) == ("CLOSED", "shipped")


async def test_an_order_edited_in_packing_reserves_more_and_releases_what_was_removed(db: Any) -> None:
    """An order edited in packing (quantity up: re-reserved; line removed: released); what did not
    change keeps its fulfillment order, in packing."""
    app = service(db)
    await stocked(app.fulfillment, "wh", "MUG", 10)
    await stocked(app.fulfillment, "wh", "TEA", 10)
    mugs = an_order(("MUG", 1))
    (kept,) = await placed(app, mugs)
    await app.pack_runs.run()

    more = mugs.model_copy(update={"line_items": [mugs.line_items[0].model_copy(update={"quantity": 3})]})
    await order_edited(app.fulfillment, more, "edited-1")
    await app.pack_runs.order_seen(more, now_iso(), "edited-1", repack=True)
    after = {fo.id: fo for fo in await fos_of(app, mugs)}
    assert after[kept.id].status == "IN_PROGRESS" and after[kept.id].order.line_items[0].quantity == 3
    (added,) = [fo for fo in after.values() if fo.id != kept.id]
    assert (added.location_id, [(line.sku, line.quantity) for line in added.line_items]) == ("wh", [("MUG", 2)])
    assert added.reservation_status == "PENDING"  # inventory reserves on its fulfillment_order.created
    await reserved(app, added)
    assert by_order((await app.pack_runs.run()).decisions)[mugs.id].outcome == Outcome.MOVED

    both = an_order(("MUG", 1), ("TEA", 1))
    (whole,) = await placed(app, both)
    await app.pack_runs.run()
    without_tea = both.model_copy(update={"line_items": both.line_items[:1]})
    await order_edited(app.fulfillment, without_tea, "edited-2")
    await order_edited(app.fulfillment, without_tea, "edited-2")  # redelivered: nothing twice
    after = {fo.id: fo for fo in await fos_of(app, both)}
    assert after[whole.id].status == "CANCELLED"  # inventory releases its MUG and TEA
    (replacement,) = [fo for fo in after.values() if fo.id != whole.id]
    assert [(line.sku, line.quantity) for line in replacement.line_items] == [("MUG", 1)]
    assert replacement.location_id == "wh"  # the MUG it held counted back there
    types = await outbox_types(db, both.id)
    assert types.count("fulfillment_order.cancelled") == 1 and types.count("fulfillment_order.created") == 2


async def test_the_listing_filters_by_warehouse_status_through_its_index(db: Any) -> None:
    app = service(db)
    await stocked(app.fulfillment, "wh", "MUG", 10)
    packed, waiting = an_order(("MUG", 1)), an_order(("MUG", 1), waiting=True)
    await placed(app, packed)
    await placed(app, waiting)
    await app.pack_runs.run()
    found = await app.fulfillment.fulfillment_orders.find(
        {"location_id": {"$eq": "wh"}, "warehouse_status": {"$eq": "packing"}}, sort=[("sort_key", 1)]
    )
    assert [fo.order_id for fo in found] == [packed.id]
    assert T0  # the sweep tests' epoch, shared


async def test_a_shortened_pack_run_interval_applies_at_once_on_the_replica_that_took_it(db: Any) -> None:
    """A flaky e2e run (test_the_periodic_pack_run_moves_the_short_order_on_once_stock_arrives): after
    `PUT /settings {"pack_run_interval_seconds": 1}` the periodic run still slept out up to
    MAX_WAIT_SECONDS (30 s) of the 15-minute interval before it read the new one. The replica that
    takes the change wakes its periodic run at once (the others within MAX_WAIT_SECONDS)."""
    app = service(db)
    packer = Packer(app.pack_runs, CollectorRegistry())
    runs = packer.runs.labels("schedule", "ok")
    task = asyncio.create_task(packer.run())
    try:
        await eventually(lambda: runs._value.get() == 1, timeout=10)  # the first turn: nobody held it
        await db["pack_run_leases"].update_one({"_id": "pack-run"}, {"$set": {"taken_epoch": 0}})  # long ago
        await app.fulfillment.settings.update({"pack_run_interval_seconds": 1})
        await eventually(lambda: runs._value.get() >= 2, timeout=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_pack_run_in_the_middle_of_a_re_route_does_not_settle_the_order(db: Any) -> None:
    """The flaky e2e run (test_the_periodic_pack_run_moves_the_short_order_on_once_stock_arrives):
    stock arriving for an out-of-stock hold cancels the hold's fulfillment order first
    (`reroute_pending`) and plans its replacements after; a pack run in between saw no fulfillment
    order to pack, settled the order as "nothing to pack", and never looked at it again."""
    app = service(db)
    await stocked(app.fulfillment, "wh", "MUG", 0)
    short = an_order(("MUG", 2))
    (held,) = await placed(app, short)
    assert held.is_out_of_stock_hold
    giving_way = await app.fulfillment.apply(held.id, partial(lifecycle.replace_out_of_stock, now=now_iso()))
    assert giving_way is not None and giving_way.reroute_pending  # the re-route is not planned yet

    decision = by_order((await app.pack_runs.run()).decisions)[short.id]
    assert decision.outcome == Outcome.NOT_ROUTED, decision.message

    await app.fulfillment.finish_reroute(giving_way)
    await app.fulfillment.stock_level_changed(
        InventoryLevel(sku="MUG", location_id="wh", on_hand=5, reserved=0, available=5, seq=2), now_iso()
    )
    for fo in await fos_of(app, short):
        if fo.status == "OPEN":
            await reserved(app, fo)
    assert by_order((await app.pack_runs.run()).decisions)[short.id].outcome == Outcome.MOVED
