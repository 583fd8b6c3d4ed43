"""Property-based tests of the stock rules over random sequences of set / adjust / reserve /
release / commit / cancel-commit / restock at one (sku, location).

Whatever the sequence: available never goes negative, reserved is exactly what the holds add
up to, and on_hand + committed always equals everything ever received (counted in or out by
hand). Delivering every fulfillment-driven step twice changes nothing compared to once.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.inventory import domain
from services.inventory.domain import Effect, StockLevel
from shared.catalog import Shortage

FULFILLMENT_ORDERS = ["fo-a", "fo-b", "fo-c"]
FULFILLMENTS = ["f-1", "f-2", "f-3", "f-4", "f-5"]
quantity = st.integers(min_value=1, max_value=8)
fo = st.sampled_from(FULFILLMENT_ORDERS)
fulfillment = st.sampled_from(FULFILLMENTS)

by_hand = st.one_of(
    st.tuples(st.just("set"), st.integers(min_value=0, max_value=30)),
    st.tuples(st.just("adjust"), st.integers(min_value=-10, max_value=10).filter(bool)),
)
by_event = st.one_of(
    st.tuples(st.just("reserve"), fo, quantity),
    st.tuples(st.just("release"), fo),
    st.tuples(st.just("commit"), fulfillment, fo, quantity),
    st.tuples(st.just("cancel_commit"), fulfillment, st.booleans()),
    st.tuples(st.just("restock"), fo),
)
steps = st.lists(st.one_of(by_hand, by_event), max_size=60)


def apply(level: StockLevel, step: tuple[Any, ...]) -> tuple[StockLevel, int]:
    """The level after one step and the units it received (+) or removed (-) by hand."""
    kind, *args = step
    if kind in ("set", "adjust"):
        try:
            changed = domain.set_on_hand(level, args[0]) if kind == "set" else domain.adjust(level, args[0])
        except domain.InventoryRuleViolation:
            return level, 0
        return changed.level, changed.level.on_hand - level.on_hand
    if kind == "reserve":
        outcome: Effect | Shortage = domain.reserve(level, args[0], args[1])
        if isinstance(outcome, Shortage):
            assert outcome.requested > outcome.available == level.available
            return level, 0
        return outcome.level, 0
    if kind == "release":
        return domain.release(level, args[0]).level, 0
    if kind == "commit":
        return domain.commit(level, args[0], args[1], "order-1", args[2]).level, 0
    if kind == "cancel_commit":
        return domain.cancel_commit(level, args[0], hold_again=args[1]).level, 0
    return domain.restock(level, args[0]).level, 0


def check(level: StockLevel, received: int) -> None:
    assert level.available >= 0
    assert level.on_hand >= 0
    assert level.reserved == sum(level.holds.values())
    assert all(held > 0 for held in level.holds.values())
    assert level.on_hand + level.committed == received


@settings(max_examples=400, deadline=None)
@given(steps)
def test_available_never_negative_and_every_unit_is_accounted_for(sequence: list[tuple[Any, ...]]) -> None:
    level, received = StockLevel("wh-1", "MUG-1"), 0
    for step in sequence:
        level, moved_in = apply(level, step)
        received += moved_in
        check(level, received)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_each_event_delivered_twice_changes_stock_once(sequence: list[tuple[Any, ...]]) -> None:
    once = twice = StockLevel("wh-1", "MUG-1")
    for step in sequence:
        once, _ = apply(once, step)
        twice, _ = apply(twice, step)
        if step[0] not in ("set", "adjust"):  # counts by hand are not events: not redelivered
            twice, _ = apply(twice, step)
        assert twice == once


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=20), st.lists(st.tuples(fo, quantity), min_size=1, max_size=20))
def test_reservations_never_hold_more_than_on_hand(on_hand: int, requests: list[tuple[str, int]]) -> None:
    level = StockLevel("wh-1", "MUG-1", on_hand=on_hand)
    granted = 0
    for fulfillment_order, units in requests:
        outcome = domain.reserve(level, fulfillment_order, units)
        if isinstance(outcome, Effect):
            granted += outcome.moved
            level = outcome.level
    assert granted == level.reserved <= on_hand
