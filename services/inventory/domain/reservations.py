"""The reservation record of a fulfillment order: what it holds and what its fulfillments took,
per (location, sku), read off the stock after each request, and the inventory.* events that
answer the request. Pure functions, no I/O.

The stock is the truth for what is live (holds); the record is the history (what each
fulfillment took and what became of it) and what was announced, so a request redelivered after
a crash announces exactly what is missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from services.inventory.domain import SOURCE
from services.inventory.domain.stock import Commit, CommitState, Recorded, StockLevel, commits_at
from shared.aggregates import Change
from shared.catalog import (
    FulfillmentOrderSnapshot,
    InventoryReservation,
    InventoryReservationFailed,
    Shortage,
    StockLine,
)
from shared.events import CloudEvent, new_event

MovementKind = Literal["reserved", "reservation_failed", "released", "committed", "restocked"]
RecordStatus = Literal["requested", "reserved", "reservation_failed", "released", "committed", "restocked"]

# Answers are named by the request they answer: a redelivered request that announces again what a
# crash kept from being recorded sends the same event (same id), which consumers take once.
ANSWERS = uuid.UUID("5d0c1f4e-1a7b-4c55-9a53-6a0b2f7c9e21")


@dataclass(frozen=True)
class RecordedHold:
    """Units the fulfillment order holds at (location, sku), as last announced."""

    location_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class RecordedCommit:
    """What one fulfillment took at (location, sku) and what became of it."""

    fulfillment_id: str
    location_id: str
    sku: str
    quantity: int
    state: CommitState


@dataclass(frozen=True)
class HistoryEntry:
    """One inventory.* event the record announced."""

    at: str
    type: str
    location_id: str
    lines: tuple[StockLine, ...] = ()


@dataclass(frozen=True)
class ReservationRecord:
    """A fulfillment order's reservation record: the answer to its last request (`status`, and
    for a reservation its `location_id` and `shortages`), its holds and commits, its history."""

    order_id: str
    fulfillment_order_id: str
    status: RecordStatus = "requested"
    location_id: str | None = None
    holds: tuple[RecordedHold, ...] = ()
    fulfillments: tuple[RecordedCommit, ...] = ()
    shortages: tuple[Shortage, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    created_at: str = ""
    updated_at: str | None = None

    def places(self) -> set[tuple[str, str]]:
        """Every (location, sku) the fulfillment order held or shipped from."""
        return {(h.location_id, h.sku) for h in self.holds} | {(c.location_id, c.sku) for c in self.fulfillments}


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


def recorded_commits(record: ReservationRecord | None, location_id: str, sku: str) -> dict[str, Commit]:
    """What the record says its fulfillments took from one stock, by fulfillment id."""
    if record is None:
        return {}
    return _commits_at(record.fulfillment_order_id, record.fulfillments, location_id, sku)


def _commits_at(fo_id: str, commits: Iterable[RecordedCommit], location_id: str, sku: str) -> dict[str, Commit]:
    return {
        c.fulfillment_id: Commit(fo_id, c.quantity, c.state)
        for c in commits
        if (c.location_id, c.sku) == (location_id, sku)
    }


def record_movements(
    record: ReservationRecord | None,
    request_id: str,
    order_id: str,
    fulfillment_order_id: str,
    levels: Iterable[StockLevel],
    movements: Sequence[Movement],
    now: str,
    sent: Collection[str] = (),
) -> Change[ReservationRecord] | None:
    """The reservation record of a fulfillment order after stock moved for it.

    What it holds per (location, sku) is read off the stock levels as they are after the move
    (the stock is the source of truth for what is live); what its fulfillments took is its own
    history, brought up to date with the stock's marks. Each movement becomes the event that
    announces it, written in the same write as the record, unless it was `sent` already (with
    the stock change itself, see `answers_ride_with_stock`).
    """
    current = record or ReservationRecord(order_id, fulfillment_order_id, created_at=now)
    holds = {(h.location_id, h.sku): h.quantity for h in current.holds}
    commits = {(c.fulfillment_id, c.location_id, c.sku): c for c in current.fulfillments}
    for level in levels:
        held = level.holds.get(fulfillment_order_id, 0)
        if held:
            holds[(level.location_id, level.sku)] = held
        else:
            holds.pop((level.location_id, level.sku), None)
        recorded = _commits_at(current.fulfillment_order_id, commits.values(), level.location_id, level.sku)
        for fulfillment_id, done in commits_at(level, fulfillment_order_id, recorded).items():
            commits[(fulfillment_id, level.location_id, level.sku)] = RecordedCommit(
                fulfillment_id, level.location_id, level.sku, done.quantity, done.state
            )
    updated = replace(
        current,
        holds=tuple(RecordedHold(location_id, sku, quantity) for (location_id, sku), quantity in sorted(holds.items())),
        fulfillments=tuple(commits[key] for key in sorted(commits)),
    )
    news = [movement for movement in movements if movement.says_something]
    for movement in news:
        updated = replace(updated, status=movement.kind, history=(*updated.history, HistoryEntry(
            now, f"inventory.{movement.kind}", movement.location_id, tuple(_stock_lines(movement.lines))
        )))  # fmt: skip
        if movement.kind in ("reserved", "reservation_failed"):
            updated = replace(updated, location_id=movement.location_id, shortages=tuple(movement.shortages))
    before = record or ReservationRecord(order_id, fulfillment_order_id)
    if not news and (updated.holds, updated.fulfillments) == (before.holds, before.fulfillments):
        return None
    events = [movement_event(request_id, order_id, fulfillment_order_id, movement) for movement in news]
    return Change(replace(updated, updated_at=now), [event for event in events if event.id not in sent])


def answers_ride_with_stock(
    record: ReservationRecord | None, unsent: bool, location_id: str, skus: Collection[str]
) -> bool:
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
    return record.places() <= {(location_id, sku)} and record.location_id in (None, location_id)


def recorded_hold(record: ReservationRecord | None, location_id: str, sku: str) -> int:
    """Units the record last announced as held by its fulfillment order at (location, sku)."""
    holds = record.holds if record else ()
    return next((h.quantity for h in holds if (h.location_id, h.sku) == (location_id, sku)), 0)


def recorded_commit_state(
    record: ReservationRecord | None, fulfillment_id: str, location_id: str, sku: str
) -> CommitState | None:
    """What the record last announced of a fulfillment's commit at (location, sku)."""
    commits = record.fulfillments if record else ()
    return next(
        (c.state for c in commits if (c.fulfillment_id, c.location_id, c.sku) == (fulfillment_id, location_id, sku)),
        None,
    )


def released(record: ReservationRecord | None, fo_id: str, level: StockLevel, moved: int, recorded: Recorded) -> int:
    """Units a release at this stock gave back: what it moved or, when a crash had the hold gone
    already, what the record announced as held."""
    return max(moved, recorded_hold(record, level.location_id, level.sku) - level.holds.get(fo_id, 0))


def restocked(record: ReservationRecord | None, fo_id: str, level: StockLevel, moved: int, recorded: Recorded) -> int:
    """Units a restock at this stock put back on hand that the record has not announced yet."""
    return sum(
        done.quantity
        for fulfillment_id, done in commits_at(level, fo_id, recorded).items()
        if done.state == CommitState.RESTOCKED
        and recorded_commit_state(record, fulfillment_id, level.location_id, level.sku) != CommitState.RESTOCKED
    )


def record_location_holds(record: ReservationRecord | None) -> dict[str, list[str]]:
    """Per location, the skus a reservation record says its fulfillment order holds."""
    found: dict[str, list[str]] = {}
    for hold in record.holds if record else ():
        found.setdefault(hold.location_id, []).append(hold.sku)
    return found


def record_committed(record: ReservationRecord | None) -> dict[str, list[str]]:
    """Per location, the skus the fulfillment order's fulfillments took and did not put back."""
    found: dict[str, list[str]] = {}
    for done in record.fulfillments if record else ():
        if done.state == CommitState.COMMITTED and done.sku not in found.get(done.location_id, []):
            found.setdefault(done.location_id, []).append(done.sku)
    return found


def release_targets(
    record: ReservationRecord | None, fulfillment_order: FulfillmentOrderSnapshot
) -> dict[str, list[str]]:
    """Per location, the skus where a fulfillment order may still hold stock: where its record
    says it holds, and, at its location, any sku of its lines the record has never seen held or
    shipped (as after a reservation whose record write was lost). A fulfillment order its record
    saw through to the end touches no stock to be let go."""
    targets = record_location_holds(record)
    location_id = fulfillment_order.location_id
    if location_id is None:
        return targets
    seen = record.places() if record else set()
    unseen = {line.sku for line in fulfillment_order.line_items if (location_id, line.sku) not in seen}
    if unseen:
        targets[location_id] = sorted(set(targets.get(location_id, [])) | unseen)
    return targets


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
