"""Property-based tests of the stock rules over random sequences of set / adjust / reserve /
release / commit / cancel-commit / restock at one (sku, location).

Whatever the sequence: available never goes negative, reserved is exactly what the holds add
up to, and on_hand + committed always equals everything ever received (counted in or out by
hand). Delivering every fulfillment-driven step twice changes nothing compared to once.

What fulfillments took is history kept in each fulfillment order's record; a step "record" stands
for the record write that takes in the stock's marks (after which the stock forgets them), at
any point of the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.inventory import domain
from services.inventory.domain import stock as stock_rules
from services.inventory.domain.stock import Commit, Effect, StockLevel
from shared.catalog import Shortage

FULFILLMENT_ORDERS = ["fo-a", "fo-b", "fo-c"]
# A fulfillment belongs to one fulfillment order.
FULFILLMENT_ORDER_OF = {"f-1": "fo-a", "f-2": "fo-b", "f-3": "fo-c", "f-4": "fo-a", "f-5": "fo-b"}
quantity = st.integers(min_value=1, max_value=8)
fo = st.sampled_from(FULFILLMENT_ORDERS)
fulfillment = st.sampled_from(sorted(FULFILLMENT_ORDER_OF))

by_hand = st.one_of(
    st.tuples(st.just("set"), st.integers(min_value=0, max_value=30)),
    st.tuples(st.just("adjust"), st.integers(min_value=-10, max_value=10).filter(bool)),
)
by_event = st.one_of(
    st.tuples(st.just("reserve"), fo, quantity),
    st.tuples(st.just("release"), fo),
    st.tuples(st.just("commit"), fulfillment, quantity),
    st.tuples(st.just("cancel_commit"), fulfillment, st.booleans()),
    st.tuples(st.just("restock"), fo),
)
recorded = st.tuples(st.just("record"), fo)
steps = st.lists(st.one_of(by_hand, by_event, recorded), max_size=60)

Records = dict[str, dict[str, Commit]]


@dataclass(frozen=True)
class State:
    """The stock and what each fulfillment order's record says its fulfillments took."""

    level: StockLevel
    records: Records

    def recorded(self, fulfillment_order_id: str) -> dict[str, Commit]:
        return self.records.get(fulfillment_order_id, {})

    @property
    def committed(self) -> int:
        return sum(
            stock_rules.committed(stock_rules.commits_at(self.level, f, self.recorded(f))) for f in FULFILLMENT_ORDERS
        )


def apply(state: State, step: tuple[Any, ...]) -> tuple[State, int]:
    """The state after one step and the units it received (+) or removed (-) by hand."""
    level = state.level
    kind, *args = step
    if kind in ("set", "adjust"):
        try:
            changed = stock_rules.set_on_hand(level, args[0]) if kind == "set" else stock_rules.adjust(level, args[0])
        except domain.InventoryRuleViolation:
            return state, 0
        return replace(state, level=changed.level), changed.level.on_hand - level.on_hand
    if kind == "record":
        settled, commits = stock_rules.settle(level, args[0], state.recorded(args[0]))
        return State(settled, {**state.records, args[0]: commits}), 0
    if kind == "reserve":
        outcome: Effect | Shortage = stock_rules.reserve(level, args[0], args[1])
        if isinstance(outcome, Shortage):
            assert outcome.requested > outcome.available == level.available
            return state, 0
        return replace(state, level=outcome.level), 0
    if kind == "release":
        return replace(state, level=stock_rules.release(level, args[0]).level), 0
    if kind == "commit":
        owner = FULFILLMENT_ORDER_OF[args[0]]
        return replace(state, level=stock_rules.commit(level, state.recorded(owner), args[0], owner, args[1]).level), 0
    if kind == "cancel_commit":
        owner = FULFILLMENT_ORDER_OF[args[0]]
        back = stock_rules.cancel_commit(level, state.recorded(owner), args[0], owner, hold_again=args[1])
        return replace(state, level=back.level), 0
    return replace(state, level=stock_rules.restock(level, state.recorded(args[0]), args[0]).level), 0


def check(state: State, received: int) -> None:
    level = state.level
    assert level.available >= 0
    assert level.on_hand >= 0
    assert level.reserved == sum(level.holds.values())
    assert all(held > 0 for held in level.holds.values())
    assert level.on_hand + state.committed == received


def start() -> State:
    return State(StockLevel("wh-1", "MUG-1"), {})


@settings(max_examples=400, deadline=None)
@given(steps)
def test_available_never_negative_and_every_unit_is_accounted_for(sequence: list[tuple[Any, ...]]) -> None:
    state, received = start(), 0
    for step in sequence:
        state, moved_in = apply(state, step)
        received += moved_in
        check(state, received)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_each_event_delivered_twice_changes_stock_once(sequence: list[tuple[Any, ...]]) -> None:
    once = twice = start()
    for step in sequence:
        once, _ = apply(once, step)
        twice, _ = apply(twice, step)
        if step[0] not in ("set", "adjust", "record"):  # counts by hand are not events: not redelivered
            twice, _ = apply(twice, step)
        assert twice == once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(by_event, recorded), max_size=200))
def test_a_stock_holds_no_more_than_what_is_live_once_recorded(sequence: list[tuple[Any, ...]]) -> None:
    """Issue 15: a stock holds what is live; once every fulfillment order's record has taken in
    the marks, the stock carries no history at all."""
    state = apply(start(), ("set", 1_000))[0]
    for step in sequence:
        state, _ = apply(state, step)
    for fulfillment_order_id in FULFILLMENT_ORDERS:
        state, _ = apply(state, ("record", fulfillment_order_id))
    assert state.level.marks == {}
    assert set(state.level.holds) <= set(FULFILLMENT_ORDERS)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=20), st.lists(st.tuples(fo, quantity), min_size=1, max_size=20))
def test_reservations_never_hold_more_than_on_hand(on_hand: int, requests: list[tuple[str, int]]) -> None:
    level = StockLevel("wh-1", "MUG-1", on_hand=on_hand)
    granted = 0
    for fulfillment_order, units in requests:
        outcome = stock_rules.reserve(level, fulfillment_order, units)
        if isinstance(outcome, Effect):
            granted += outcome.moved
            level = outcome.level
    assert granted == level.reserved <= on_hand
