"""Fulfillment's copy of inventory's stock levels is ordered by inventory's change count, not by
the events' clock (issue: "a future-dated `inventory.level_changed` (2099) freezes fulfillment's
view of that stock, because newer snapshots are ignored as older").

Against the real embedded store; no broker: inventory's events are read from its outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from services.fulfillment.handlers import _as_of
from services.fulfillment.lookups import KNOWN_STOCK, StockView
from services.inventory.domain import stock as stock_rules
from services.inventory.store import StockStore, stock_id
from shared.catalog import InventoryLevel, Location, Shortage
from shared.clock import iso as normalise_time
from shared.events import new_event
from shared.store import AggregateStore, now_iso

FUTURE = "2099-01-01T00:00:00.000000+00:00"
PAST = "2020-01-01T00:00:00.000000+00:00"


def nothing(*_: object) -> None:
    return None


def level(available: int, seq: int | None) -> InventoryLevel:
    return InventoryLevel(sku="MUG", location_id="wh", on_hand=available, reserved=0, available=available, seq=seq)


async def seen(view: StockView) -> int:
    return (await view.available(["MUG"]))[("wh", "MUG")]


async def test_a_future_dated_level_changed_does_not_freeze_the_stock_view(db: Any) -> None:
    view = StockView(AggregateStore(db["stock_view"], nothing, mapping=KNOWN_STOCK))
    await view.record(level(5, seq=1), now_iso())
    await view.record(level(9, seq=2), FUTURE)  # inventory's clock (or a forger) says 2099
    assert await seen(view) == 9
    await view.record(level(2, seq=3), now_iso())  # the next real change: it must count
    assert await seen(view) == 2


async def test_an_older_snapshot_arriving_late_is_ignored_whatever_its_time(db: Any) -> None:
    view = StockView(AggregateStore(db["stock_view"], nothing, mapping=KNOWN_STOCK))
    assert await view.record(level(4, seq=7), PAST)  # True: more became available
    assert not await view.record(level(100, seq=6), FUTURE)
    await view.record(level(100, seq=7), FUTURE)  # the same change again
    assert await seen(view) == 4


async def test_snapshots_from_before_the_change_count_are_older_than_any_counted_one(db: Any) -> None:
    view = StockView(AggregateStore(db["stock_view"], nothing, mapping=KNOWN_STOCK))
    await view.record(level(3, seq=None), PAST)
    await view.record(level(4, seq=None), now_iso())  # among uncounted ones, time decides
    assert await seen(view) == 4
    await view.record(level(6, seq=1), PAST)
    await view.record(level(50, seq=None), FUTURE)
    assert await seen(view) == 6


async def test_a_shortage_counts_only_when_it_is_newer_than_what_is_known(db: Any) -> None:
    view = StockView(AggregateStore(db["stock_view"], nothing, mapping=KNOWN_STOCK))
    await view.record(level(5, seq=4), now_iso())
    await view.record_shortage("wh", "MUG", 0, FUTURE, seq=3)  # seen before the level we have
    assert await seen(view) == 5
    await view.record_shortage("wh", "MUG", 1, PAST, seq=5)
    assert await seen(view) == 1
    await view.record(level(8, seq=6), PAST)
    assert await seen(view) == 8


async def test_inventory_numbers_every_level_it_announces_and_every_shortage(db: Any) -> None:
    stock = StockStore(db["stock"], nothing)
    for on_hand in (5, 7, 3):
        written = (
            await stock.change("wh", "MUG", partial(stock_rules.set_on_hand, on_hand=on_hand), {"kind": "set"})
        ).level
    assert written.seq == 3
    doc = await db["stock"].find_one({"_id": stock_id("wh", "MUG")})
    events = [entry["event"] for entry in sorted(doc["outbox"].values(), key=lambda entry: entry["seq"])]
    assert [(e["type"], e["data"]["seq"], e["data"]["on_hand"]) for e in events] == [
        ("inventory.level_changed", 1, 5),
        ("inventory.level_changed", 2, 7),
        ("inventory.level_changed", 3, 3),
    ]
    changed = await stock.change("wh", "MUG", partial(stock_rules.reserve, fulfillment_order_id="fo", quantity=9), {})
    current, short = changed.level, changed.outcome
    assert short == Shortage(sku="MUG", requested=9, available=3, seq=3) and current.seq == 3


def test_an_event_dated_in_the_future_counts_as_seen_now() -> None:
    """Locations are still ordered by time: a 2099 `location.updated` must not outrank the next one."""
    before = now_iso()
    event = new_event("inventory", "location.updated", "wh", Location(id="wh", name="WH", priority=1))
    future = event.model_copy(update={"time": datetime(2099, 1, 1, tzinfo=UTC)})
    assert before <= _as_of(future) <= now_iso()
    assert _as_of(event) == normalise_time(event.time)
