"""Fulfillment's stock view keeps each stock's bin from inventory's level events, so that pick
lists walk the bins: "a bin per sku and location in inventory". A bin set just after a count
leaves `available` as it was: the view must not take that snapshot for one it already has.

Against the real embedded store; no broker.
"""

from __future__ import annotations

from typing import Any

from services.fulfillment.lookups import KNOWN_STOCK, StockView
from shared.catalog import InventoryLevel
from shared.store import AggregateStore, now_iso


def nothing(*_: object) -> None:
    return None


def level(sku: str, seq: int, bin_code: str | None = None, available: int = 10) -> InventoryLevel:
    return InventoryLevel(
        sku=sku, location_id="wh", on_hand=available, reserved=0, available=available, seq=seq, bin=bin_code
    )


async def test_a_bin_set_right_after_a_count_reaches_the_view_though_available_is_unchanged(db: Any) -> None:
    view = StockView(AggregateStore(db["stock_view"], nothing, mapping=KNOWN_STOCK))
    await view.record(level("MUG", 1), now_iso())
    await view.record(level("TEA", 1), now_iso())
    await view.record(level("MUG", 2, "A-10"), now_iso())  # within SEEN_SECONDS, same available
    await view.record(level("TEA", 2, "A-2"), now_iso())
    assert await view.bins("wh", ["MUG", "TEA", "SPOON"]) == {"MUG": "A-10", "TEA": "A-2"}

    await view.record(level("MUG", 3, None), now_iso())  # cleared
    await view.record(level("TEA", 3, "A-2", available=9), now_iso())  # a reservation keeps the bin
    assert await view.bins("wh", ["MUG", "TEA"]) == {"TEA": "A-2"}
    assert (await view.available(["TEA"], ["wh"])) == {("wh", "TEA"): 9}
