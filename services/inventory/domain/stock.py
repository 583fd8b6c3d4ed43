"""Inventory's rules: locations by priority, stock per (sku, location), and what each
fulfillment order holds there. Pure functions, no I/O.

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

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from shared.aggregates import Change, Document
from shared.catalog import (
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    FulfillmentSnapshot,
    InventoryLevel,
    InventoryReservation,
    InventoryReservationFailed,
    Location,
    OrderCancelled,
    Shortage,
    StockLine,
)
from shared.events import CloudEvent, new_event
from shared.rules import RuleViolation

SOURCE = "inventory"


class InventoryRuleViolation(RuleViolation):
    """The change would break a stock or location rule; the message says which and why."""


class PriorityTaken(InventoryRuleViolation):
    def __init__(self, priority: int, holder: str) -> None:
        self.priority = priority
        self.holder = holder
        super().__init__(
            f"priority {priority} belongs to location {holder!r}; "
            "choose a free priority or re-order with PUT /locations/priorities"
        )


class UnknownLocation(LookupError):
    """A location id that is not in the directory."""

    def __init__(self, location_ids: Iterable[str]) -> None:
        self.location_ids = sorted(location_ids)
        super().__init__(f"no location {', '.join(repr(i) for i in self.location_ids)}")


# --- locations --------------------------------------------------------------------------

LOCATION_DIRECTORY = "directory"
"""All locations live in one document, so that priority stays unique and a re-order is one
atomic write (a shop has a handful of locations, not thousands)."""


def locations(directory: Document | None) -> list[Location]:
    """The locations by priority, 1 first."""
    found = [Location.model_validate(raw) for raw in (directory or {}).get("locations", [])]
    return sorted(found, key=lambda location: location.priority)


def find_location(directory: Document | None, location_id: str) -> Location | None:
    return next((location for location in locations(directory) if location.id == location_id), None)


def put_location(
    directory: Document | None,
    location_id: str,
    name: str,
    priority: int | None,
    active: bool,
    fulfillment_service: str | None,
    now: str,
) -> Change | None:
    """Create or update a location. Priority is unique: taking another location's priority is
    refused (re-order instead); no priority means last for a new location, unchanged otherwise."""
    known = {location.id: location for location in locations(directory)}
    current = known.get(location_id)
    if priority is None:
        priority = current.priority if current else max((loc.priority for loc in known.values()), default=0) + 1
    holder = next((loc for loc in known.values() if loc.priority == priority and loc.id != location_id), None)
    if holder is not None:
        raise PriorityTaken(priority, holder.id)
    wanted = Location(
        id=location_id, name=name, priority=priority, active=active, fulfillment_service=fulfillment_service
    )
    if wanted == current:
        return None
    known[location_id] = wanted
    return _directory(known.values(), now, [wanted])


def reorder_locations(directory: Document | None, location_ids: Sequence[str], now: str) -> Change | None:
    """The listed locations take priorities 1..n in that order; the others keep their relative
    order after them. One write; a location.updated for every location whose priority moved."""
    known = locations(directory)
    missing = set(location_ids) - {location.id for location in known}
    if missing:
        raise UnknownLocation(missing)
    if len(set(location_ids)) != len(location_ids):
        raise InventoryRuleViolation("location_ids lists a location more than once")
    first = [next(loc for loc in known if loc.id == location_id) for location_id in location_ids]
    rest = [loc for loc in known if loc.id not in set(location_ids)]
    renumbered = [loc.model_copy(update={"priority": rank}) for rank, loc in enumerate([*first, *rest], start=1)]
    moved = [new for new, old in zip(renumbered, [*first, *rest], strict=True) if new.priority != old.priority]
    if not moved:
        return None
    return _directory(renumbered, now, moved)


def _directory(all_locations: Iterable[Location], now: str, updated: Iterable[Location]) -> Change:
    ordered = sorted(all_locations, key=lambda location: location.priority)
    document: Document = {"locations": [loc.model_dump(mode="json") for loc in ordered], "updated_at": now}
    events = [new_event(SOURCE, "location.updated", loc.id, loc) for loc in updated]
    return Change(document, events)


# --- stock at one location --------------------------------------------------------------


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


# --- what fulfillment asks for ----------------------------------------------------------


def wants_stock(fulfillment_order: FulfillmentOrderSnapshot) -> bool:
    """Only a live fulfillment order at a location asks for stock. One without a location
    (digital goods, or waiting for stock) is not inventory's business."""
    return fulfillment_order.location_id is not None and fulfillment_order.status != FulfillmentOrderStatus.CANCELLED


def lines_to_reserve(fulfillment_order: FulfillmentOrderSnapshot) -> dict[str, int]:
    """Units to hold per sku: what is still to ship of the lines that ship."""
    wanted: dict[str, int] = {}
    for line in fulfillment_order.line_items:
        remaining = line.quantity - line.fulfilled_quantity
        if line.requires_shipping and remaining > 0:
            wanted[line.sku] = wanted.get(line.sku, 0) + remaining
    return dict(sorted(wanted.items()))


def lines_shipped(fulfillment: FulfillmentSnapshot) -> dict[str, int]:
    shipped: dict[str, int] = {}
    for line in fulfillment.line_items:
        if line.quantity > 0:
            shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
    return dict(sorted(shipped.items()))


def holds_again_after_cancelled_fulfillment(fulfillment_order: FulfillmentOrderSnapshot, order_cancelled: bool) -> bool:
    """Units of a cancelled fulfillment are held again only for a fulfillment order that still
    wants them."""
    done = fulfillment_order.status in (FulfillmentOrderStatus.CANCELLED, FulfillmentOrderStatus.CLOSED)
    return not done and not order_cancelled


def release_targets(record: Document | None, fulfillment_order: FulfillmentOrderSnapshot) -> dict[str, list[str]]:
    """Per location, the skus where a fulfillment order may still hold stock: where its record
    says it holds, and, at its location, any sku of its lines the record has never seen held or
    shipped (as after a reservation whose record write was lost). A fulfillment order its record
    saw through to the end touches no stock to be let go."""
    targets = record_location_holds(record)
    location_id = fulfillment_order.location_id
    if location_id is None:
        return targets
    seen = {(h["location_id"], h["sku"]) for h in (record or {}).get("holds", [])} | {
        (c["location_id"], c["sku"]) for c in (record or {}).get("fulfillments", [])
    }
    unseen = {line.sku for line in fulfillment_order.line_items if (location_id, line.sku) not in seen}
    if unseen:
        targets[location_id] = sorted(set(targets.get(location_id, [])) | unseen)
    return targets


def note_order_cancelled(note: Document | None, cancelled: OrderCancelled, now: str) -> Change | None:
    """Remember that an order was cancelled (and whether with restock): a shipment of it that
    reaches inventory later comes straight back when restock was asked for."""
    if note is not None:
        return None
    return Change({
        "cancelled_order_id": cancelled.order.id, "restock": cancelled.restock, "reason": cancelled.reason,
        "cancelled_at": now,
    })  # fmt: skip


# --- the reservation record of a fulfillment order --------------------------------------

MovementKind = Literal["reserved", "reservation_failed", "released", "committed", "restocked"]

# Answers are named by the request they answer: a redelivered request that announces again what a
# crash kept from being recorded sends the same event (same id), which consumers take once.
ANSWERS = uuid.UUID("5d0c1f4e-1a7b-4c55-9a53-6a0b2f7c9e21")


@dataclass(frozen=True)
class Movement:
    """Stock moved for a fulfillment order at one location; becomes one inventory.* event."""

    kind: MovementKind
    location_id: str
    lines: Mapping[str, int]
    shortages: Sequence[Shortage] = ()

    @property
    def says_something(self) -> bool:
        """A request is always answered; other movements are news only if units moved."""
        return self.kind in ("reserved", "reservation_failed") or any(self.lines.values())


def recorded_commits(record: Document | None, location_id: str, sku: str) -> dict[str, Commit]:
    """What the record says its fulfillments took from one stock, by fulfillment id."""
    if record is None:
        return {}
    fo_id = record["fulfillment_order_id"]
    return {
        c["fulfillment_id"]: Commit(fo_id, int(c["quantity"]), CommitState(c["state"]))
        for c in record.get("fulfillments", [])
        if (c["location_id"], c["sku"]) == (location_id, sku)
    }


def record_movements(
    record: Document | None,
    request_id: str,
    order_id: str,
    fulfillment_order_id: str,
    levels: Iterable[StockLevel],
    movements: Sequence[Movement],
    now: str,
    sent: Collection[str] = (),
) -> Change | None:
    """The reservation record of a fulfillment order after stock moved for it.

    What it holds per (location, sku) is read off the stock levels as they are after the move
    (the stock is the source of truth for what is live); what its fulfillments took is its own
    history, brought up to date with the stock's marks. Each movement becomes the event that
    announces it, written in the same write as the record, unless it was `sent` already (with
    the stock change itself, see `answers_ride_with_stock`).
    """
    doc: Document = dict(record) if record else {
        "order_id": order_id,
        "fulfillment_order_id": fulfillment_order_id,
        "status": "requested",
        "location_id": None,
        "holds": [],
        "fulfillments": [],
        "shortages": [],
        "history": [],
        "created_at": now,
    }  # fmt: skip
    holds = {(h["location_id"], h["sku"]): h["quantity"] for h in doc["holds"]}
    commits = {(c["fulfillment_id"], c["location_id"], c["sku"]): c for c in doc["fulfillments"]}
    for level in levels:
        held = level.holds.get(fulfillment_order_id, 0)
        if held:
            holds[(level.location_id, level.sku)] = held
        else:
            holds.pop((level.location_id, level.sku), None)
        recorded = recorded_commits({**doc, "fulfillments": list(commits.values())}, level.location_id, level.sku)
        for fulfillment_id, done in commits_at(level, fulfillment_order_id, recorded).items():
            commits[(fulfillment_id, level.location_id, level.sku)] = {
                "fulfillment_id": fulfillment_id, "location_id": level.location_id, "sku": level.sku,
                "quantity": done.quantity, "state": done.state.value,
            }  # fmt: skip
    doc["holds"] = [
        {"location_id": location_id, "sku": sku, "quantity": quantity}
        for (location_id, sku), quantity in sorted(holds.items())
    ]
    doc["fulfillments"] = [commits[key] for key in sorted(commits)]
    news = [movement for movement in movements if movement.says_something]
    for movement in news:
        doc["status"] = movement.kind
        if movement.kind in ("reserved", "reservation_failed"):
            doc["location_id"] = movement.location_id
            doc["shortages"] = [s.model_dump(mode="json") for s in movement.shortages]
        doc["history"] = [*doc["history"], {
            "at": now, "type": f"inventory.{movement.kind}", "location_id": movement.location_id,
            "lines": [line.model_dump(mode="json") for line in _stock_lines(movement.lines)],
        }]  # fmt: skip
    unchanged = doc["holds"] == (record or {}).get("holds", []) and doc["fulfillments"] == (record or {}).get(
        "fulfillments", []
    )
    if not news and unchanged:
        return None
    doc["updated_at"] = now
    events = [movement_event(request_id, order_id, fulfillment_order_id, movement) for movement in news]
    return Change(doc, [event for event in events if event.id not in sent])


def answers_ride_with_stock(record: Document | None, unsent: bool, location_id: str, skus: Collection[str]) -> bool:
    """Whether a request's answer may be written with its stock change, in the stock's outbox,
    instead of with the record (saving the record its own relay). Only for a fulfillment order
    whose stock is one (sku, location) and whose record has nothing still to send: then all its
    answers leave through that one outbox, or after the record's are out, in the order they
    were given."""
    if unsent or len(skus) != 1:
        return False
    [sku] = skus
    if record is None:
        return True
    places = {(h["location_id"], h["sku"]) for h in record.get("holds", [])} | {
        (c["location_id"], c["sku"]) for c in record.get("fulfillments", [])
    }
    return places <= {(location_id, sku)} and record.get("location_id") in (None, location_id)


def recorded_hold(record: Document | None, location_id: str, sku: str) -> int:
    """Units the record last announced as held by its fulfillment order at (location, sku)."""
    return next(
        (h["quantity"] for h in (record or {}).get("holds", []) if (h["location_id"], h["sku"]) == (location_id, sku)),
        0,
    )


def recorded_commit_state(record: Document | None, fulfillment_id: str, location_id: str, sku: str) -> str | None:
    """What the record last announced of a fulfillment's commit at (location, sku)."""
    return next(
        (
            c["state"]
            for c in (record or {}).get("fulfillments", [])
            if (c["fulfillment_id"], c["location_id"], c["sku"]) == (fulfillment_id, location_id, sku)
        ),
        None,
    )


def record_location_holds(record: Document | None) -> dict[str, list[str]]:
    """Per location, the skus a reservation record says its fulfillment order holds."""
    found: dict[str, list[str]] = {}
    for hold in (record or {}).get("holds", []):
        found.setdefault(hold["location_id"], []).append(hold["sku"])
    return found


def record_committed(record: Document | None) -> dict[str, list[str]]:
    """Per location, the skus the fulfillment order's fulfillments took and did not put back."""
    found: dict[str, list[str]] = {}
    for done in (record or {}).get("fulfillments", []):
        if done["state"] == CommitState.COMMITTED and done["sku"] not in found.get(done["location_id"], []):
            found.setdefault(done["location_id"], []).append(done["sku"])
    return found


def movement_event(request_id: str, order_id: str, fulfillment_order_id: str, movement: Movement) -> CloudEvent:
    """The inventory.* event announcing a movement, named by the request that caused it."""
    lines = _stock_lines(movement.lines)
    payload: InventoryReservation | InventoryReservationFailed
    if movement.kind == "reservation_failed":
        payload = InventoryReservationFailed(
            order_id=order_id,
            fulfillment_order_id=fulfillment_order_id,
            location_id=movement.location_id,
            lines=lines,
            shortages=list(movement.shortages),
        )
    else:
        payload = InventoryReservation(
            order_id=order_id, fulfillment_order_id=fulfillment_order_id, location_id=movement.location_id, lines=lines
        )
    event = new_event(SOURCE, f"inventory.{movement.kind}", order_id, payload)
    name = f"{request_id}/{fulfillment_order_id}/{movement.kind}/{movement.location_id}"
    return event.model_copy(update={"id": str(uuid.uuid5(ANSWERS, name))})


def _stock_lines(lines: Mapping[str, int]) -> list[StockLine]:
    return [StockLine(sku=sku, quantity=quantity) for sku, quantity in sorted(lines.items()) if quantity]


def level_changed(level: StockLevel) -> CloudEvent:
    return new_event(SOURCE, "inventory.level_changed", level.sku, level.snapshot())
