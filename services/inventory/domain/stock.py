"""Stock of one sku at one location, and what moves it. Pure functions, no I/O.

Stock at a location: `on_hand` units are in the building; `reserved` of them are held for
fulfillment orders (a hold per fulfillment order); `available = on_hand - reserved` can be
promised to new orders and is never negative. A fulfillment commits stock (it leaves the
building: on_hand and reserved both go down); cancelling the fulfillment puts it back;
cancelling the order with restock puts what was shipped back on hand.

A stock holds only what is live (on hand, reserved, the holds of open fulfillment orders) and
stays the same size however many units were ever sold. What each fulfillment took, and what
became of it, is history: it lives in the fulfillment order's reservation record. Between the
stock write and the record write, a mark on the stock says the effect is done; the record takes
it in and the stock forgets it (`settle`).

Every stock rule is idempotent by construction: a hold is keyed by its fulfillment order and a
commit by its fulfillment (in the record, or marked on the stock), so doing the same thing twice
finds it done and moves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from services.inventory.domain import SOURCE, InventoryRuleViolation
from shared.catalog import InventoryLevel, Shortage
from shared.events import CloudEvent, new_event


class CommitState(StrEnum):
    COMMITTED = "committed"  # shipped: counted out of on_hand
    CANCELLED = "cancelled"  # the fulfillment was cancelled: back in the building
    RESTOCKED = "restocked"  # the order was cancelled with restock: back on hand


@dataclass(frozen=True)
class Commit:
    """What one fulfillment took out of one stock, and what became of it. History: it is kept in
    the fulfillment order's reservation record, not in the stock (which holds only what is live)."""

    fulfillment_order_id: str
    quantity: int
    state: CommitState = CommitState.COMMITTED


@dataclass(frozen=True)
class Mark:
    """A commit, cancel or restock the stock has had and its fulfillment order's record may not
    show yet. The stock keeps it only until that record has it: it makes the effect idempotent
    across a crash between the two writes, then it is forgotten (see `settle`)."""

    fulfillment_id: str
    fulfillment_order_id: str
    state: CommitState
    quantity: int

    @property
    def key(self) -> str:
        return f"{self.state.value}:{self.fulfillment_id}"


@dataclass(frozen=True)
class StockLevel:
    """Stock of one sku at one location: what is live, the same size however much was ever sold."""

    location_id: str
    sku: str
    on_hand: int = 0
    reserved: int = 0
    holds: Mapping[str, int] = field(default_factory=dict)  # fulfillment order id -> units held
    marks: Mapping[str, Mark] = field(default_factory=dict)  # Mark.key -> effect not yet recorded
    seq: int = 0  # how many changes this stock has had: the order of its snapshots for others
    bin: str | None = None  # where the sku is kept at the location (pick lists walk the bins in order)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def snapshot(self) -> InventoryLevel:
        return InventoryLevel(
            sku=self.sku,
            location_id=self.location_id,
            on_hand=self.on_hand,
            reserved=self.reserved,
            available=self.available,
            seq=self.seq,
            bin=self.bin,
        )


Recorded = Mapping[str, Commit]
"""What a fulfillment order's record says its fulfillments took from one stock, by fulfillment id."""

_LATER = {CommitState.COMMITTED: 0, CommitState.CANCELLED: 1, CommitState.RESTOCKED: 1}


def commits_at(level: StockLevel, fulfillment_order_id: str, recorded: Recorded) -> dict[str, Commit]:
    """What a fulfillment order's fulfillments took from this stock and what became of it: its
    record, brought up to date with the marks of effects the stock has had since. A commit only
    ever moves on from COMMITTED (to CANCELLED or RESTOCKED), never back."""
    known = dict(recorded)
    marks = [m for m in level.marks.values() if m.fulfillment_order_id == fulfillment_order_id]
    for mark in sorted(marks, key=lambda m: _LATER[m.state]):
        done = known.get(mark.fulfillment_id)
        if mark.state == CommitState.COMMITTED:
            if done is None:
                known[mark.fulfillment_id] = Commit(fulfillment_order_id, mark.quantity)
        elif done is None or done.state == CommitState.COMMITTED:
            known[mark.fulfillment_id] = Commit(fulfillment_order_id, mark.quantity, mark.state)
    return known


def committed(commits: Recorded) -> int:
    """Units shipped and not put back."""
    return sum(c.quantity for c in commits.values() if c.state == CommitState.COMMITTED)


def settle(level: StockLevel, fulfillment_order_id: str, recorded: Recorded) -> tuple[StockLevel, dict[str, Commit]]:
    """The fulfillment order's record takes in what the stock's marks say, and the stock forgets
    them: what happens, in two writes, once the record is saved."""
    commits = commits_at(level, fulfillment_order_id, recorded)
    marks = {k: m for k, m in level.marks.items() if m.fulfillment_order_id != fulfillment_order_id}
    return replace(level, marks=marks), commits


@dataclass(frozen=True)
class Effect:
    """The stock as it should be now, and how many units this effect moved (0 when there was
    nothing to do or it had been done before)."""

    level: StockLevel
    moved: int = 0


def set_on_hand(level: StockLevel, on_hand: int) -> Effect:
    """A count: the location says it has `on_hand` units. Reserved units cannot be counted away."""
    if on_hand < 0:
        raise InventoryRuleViolation(f"on_hand cannot be negative (got {on_hand})")
    if on_hand < level.reserved:
        raise InventoryRuleViolation(
            f"on_hand {on_hand} is below the {level.reserved} units reserved for fulfillment orders "
            f"of {level.sku!r} at {level.location_id!r}; release or move those first"
        )
    return Effect(replace(level, on_hand=on_hand), abs(on_hand - level.on_hand))


def set_bin(level: StockLevel, bin_code: str | None) -> Effect:
    """Where the sku is kept at the location (None: no bin). Moves no units; a change of bin is
    a change of the stock all the same, announced with its level so fulfillment's pick lists see it."""
    return Effect(replace(level, bin=bin_code or None))


def adjust(level: StockLevel, delta: int) -> Effect:
    """Units received (delta > 0) or lost, damaged, corrected away (delta < 0)."""
    on_hand = level.on_hand + delta
    if on_hand < 0:
        raise InventoryRuleViolation(
            f"adjusting by {delta} would leave on_hand {on_hand}: {level.sku!r} at {level.location_id!r} "
            f"has only {level.on_hand} on hand"
        )
    if on_hand < level.reserved:
        raise InventoryRuleViolation(
            f"adjusting by {delta} would leave on_hand {on_hand}, below the {level.reserved} units reserved "
            f"for fulfillment orders of {level.sku!r} at {level.location_id!r} (available: {level.available})"
        )
    return Effect(replace(level, on_hand=on_hand), abs(delta))


def reserve(level: StockLevel, fulfillment_order_id: str, quantity: int) -> Effect | Shortage:
    """Hold `quantity` units for a fulfillment order, or say how short the stock is.

    A fulfillment order holds once per location: asking again finds the hold and moves nothing.
    """
    _positive(quantity)
    if fulfillment_order_id in level.holds:
        return Effect(level)
    if quantity > level.available:
        return Shortage(sku=level.sku, requested=quantity, available=max(level.available, 0), seq=level.seq)
    holds = {**level.holds, fulfillment_order_id: quantity}
    return Effect(replace(level, reserved=level.reserved + quantity, holds=holds), quantity)


def release(level: StockLevel, fulfillment_order_id: str) -> Effect:
    """Let go of everything a fulfillment order holds here."""
    held = level.holds.get(fulfillment_order_id, 0)
    if not held:
        return Effect(level)
    holds = {fo: q for fo, q in level.holds.items() if fo != fulfillment_order_id}
    return Effect(replace(level, reserved=level.reserved - held, holds=holds), held)


def commit(
    level: StockLevel, recorded: Recorded, fulfillment_id: str, fulfillment_order_id: str, quantity: int
) -> Effect:
    """A fulfillment shipped `quantity` units from here: they leave on_hand, out of the
    fulfillment order's hold first, then out of what is available.

    Never more than the records allow: if the building had fewer units than were shipped, the
    commit takes what there is (the caller sees `moved` < quantity), so available stays >= 0.
    Once per fulfillment: its record (`recorded`) or the stock's mark says when it is done.
    """
    _positive(quantity)
    if fulfillment_id in commits_at(level, fulfillment_order_id, recorded):
        return Effect(level)
    held = level.holds.get(fulfillment_order_id, 0)
    from_hold = min(held, quantity)
    taken = from_hold + min(quantity - from_hold, level.available)
    if taken == 0:
        return Effect(level)
    holds = {fo: q for fo, q in level.holds.items() if fo != fulfillment_order_id}
    if held - from_hold:
        holds[fulfillment_order_id] = held - from_hold
    changed = replace(
        level,
        on_hand=level.on_hand - taken,
        reserved=level.reserved - from_hold,
        holds=holds,
        marks=_marked(level, Mark(fulfillment_id, fulfillment_order_id, CommitState.COMMITTED, taken)),
    )
    return Effect(changed, taken)


def cancel_commit(
    level: StockLevel, recorded: Recorded, fulfillment_id: str, fulfillment_order_id: str, hold_again: bool
) -> Effect:
    """A cancelled fulfillment did not ship: its units are back in the building, held again for
    their fulfillment order (or simply available when that order no longer needs them)."""
    done = commits_at(level, fulfillment_order_id, recorded).get(fulfillment_id)
    if done is None or done.state != CommitState.COMMITTED:
        return Effect(level)
    marks = _marked(level, Mark(fulfillment_id, fulfillment_order_id, CommitState.CANCELLED, done.quantity))
    if not hold_again:
        return Effect(replace(level, on_hand=level.on_hand + done.quantity, marks=marks), done.quantity)
    fo = fulfillment_order_id
    changed = replace(
        level,
        on_hand=level.on_hand + done.quantity,
        reserved=level.reserved + done.quantity,
        holds={**level.holds, fo: level.holds.get(fo, 0) + done.quantity},
        marks=marks,
    )
    return Effect(changed, done.quantity)


def restock(level: StockLevel, recorded: Recorded, fulfillment_order_id: str) -> Effect:
    """The order was cancelled with restock: what the fulfillment order shipped from here comes
    back on hand."""
    returned = {
        fid: c
        for fid, c in commits_at(level, fulfillment_order_id, recorded).items()
        if c.state == CommitState.COMMITTED
    }
    if not returned:
        return Effect(level)
    marks = dict(level.marks)
    for fid, c in returned.items():
        mark = Mark(fid, fulfillment_order_id, CommitState.RESTOCKED, c.quantity)
        marks[mark.key] = mark
    quantity = sum(c.quantity for c in returned.values())
    return Effect(replace(level, on_hand=level.on_hand + quantity, marks=marks), quantity)


def _marked(level: StockLevel, mark: Mark) -> dict[str, Mark]:
    return {**level.marks, mark.key: mark}


def _positive(quantity: int) -> None:
    if quantity <= 0:
        raise ValueError(f"a quantity to move must be positive, not {quantity}")


def level_changed(level: StockLevel) -> CloudEvent:
    return new_event(SOURCE, "inventory.level_changed", level.sku, level.snapshot())
