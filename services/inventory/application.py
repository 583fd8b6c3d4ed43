"""What inventory does for a request, in the order that makes a crash harmless.

A request from fulfillment touches one or more stock documents (one per sku) and the reservation
record of one fulfillment order; there are no multi-document transactions. So:

1. the record is read (with the request's event id, if it was applied already: nothing to do);
2. the stock effects come next, each one idempotent (a hold is keyed by fulfillment order; a
   commit, cancel or restock by fulfillment, in the record or as a mark on the stock) and written
   with its level event in one conditional write;
3. then the record is written with the inventory.* events, the request's event id (inbox) and the
   history the stock's marks stand for, in one write, only if the record did not change since 1;
   if it did, all of it is decided again (the stock effects find themselves done). Once the
   record has them, the stock forgets its marks.

A crash between 2 and 3 leaves the event unrecorded, so Kafka redelivers it: the stock effects
find themselves done and move nothing, and what the events announce is read off the stock (the
truth) against the record (what was announced), so nothing is lost or announced twice.

The answer of a request on a single stock rides with that stock's change (its outbox, see
`domain.answers_ride_with_stock`); the record then carries no event and costs no relay.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

from services.inventory import domain
from services.inventory.domain import CommitState, Effect, Movement, StockLevel
from services.inventory.store import Announce, Changed, StockStore
from shared.catalog import (
    FulfillmentOrderSnapshot,
    FulfillmentSnapshot,
    Location,
    OrderCancelled,
    Shortage,
)
from shared.clock import now_iso
from shared.events import CloudEvent
from shared.store import AggregateStore, Change, ConcurrencyConflict, Document

log = logging.getLogger(__name__)

# How long a location seen active is taken as active for a reservation without reading the
# directory again. A location not known or not active is always read afresh, and this
# process's own changes of locations are seen at once; a deactivation made through another
# replica reaches this one's reservations within this many seconds.
DIRECTORY_SECONDS = 5.0
# A page of an order's reservation records (an order has at most 250 lines).
RECORDS_PAGE = 500


class FaultPoints:
    """Test-only crash points. `FAULT_CRASH_AT` names one; the process dies there (like a kill)
    the first time it is reached, and the marker file `FAULT_MARKER` remembers that it did, so
    the restarted process carries on. Unset in production: then this does nothing."""

    def __init__(self, crash_at: str | None = None, marker: str | None = None) -> None:
        if crash_at and not marker:
            raise ValueError("FAULT_CRASH_AT needs FAULT_MARKER, or the process would crash at every restart")
        self.crash_at = crash_at
        self.marker = Path(marker) if marker else None
        if crash_at:
            log.warning("fault injection enabled: the process will crash once at %s", crash_at)

    def reached(self, name: str) -> None:
        if name != self.crash_at or self.marker is None or self.marker.exists():
            return
        self.marker.write_text(name)
        log.warning("fault point %s reached: crashing", name)
        os._exit(70)


def cancellation_note_id(order_id: str) -> str:
    """An order's cancellation note lives beside its fulfillment orders' records, so that a
    shipment reads both in one round trip (fulfillment order ids are uuids: never a '/')"""
    return f"cancelled-order/{order_id}"


@dataclass
class Record:
    """A fulfillment order's reservation record as read, with what a request needs beside it."""

    stored: Document | None  # as stored (with inbox and outbox), None if there is none yet
    note: Document | None = None  # the order's cancellation note, when asked for and there is one

    @cached_property
    def public(self) -> Document | None:
        if self.stored is None:
            return None
        hidden = ("_id", "inbox", "outbox", "outbox_pending", "relay_lease_epoch", "relay_lease_until")
        return {"id": self.stored["_id"], **{k: v for k, v in self.stored.items() if k not in hidden}}

    @property
    def unsent(self) -> bool:
        """Whether events it announced are still waiting in its outbox."""
        return bool((self.stored or {}).get("outbox"))

    def applied(self, event_id: str) -> bool:
        return self.stored is not None and event_id in self.stored.get("inbox", {})


@dataclass
class Moves:
    """What one request did to stock: the stocks as changed, the movements to announce, and the
    ids of the answers already written with a stock change."""

    levels: list[StockLevel] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)

    def took(self, changed: Changed[Effect] | Changed[Effect | Shortage]) -> StockLevel:
        self.levels.append(changed.level)
        self.sent.update(changed.sent)
        return changed.level


Step = Callable[[Record], Awaitable[Moves]]


class Inventory:
    """Locations, stock, and the reservation record of each fulfillment order."""

    RECORD_ATTEMPTS = 50

    def __init__(
        self,
        stock: StockStore,
        reservations: AggregateStore,
        locations: AggregateStore,
        faults: FaultPoints | None = None,
    ) -> None:
        self.stock = stock
        self.reservations = reservations
        self.locations = locations
        self.faults = faults or FaultPoints()
        self._directory: tuple[float, Document | None] | None = None

    # --- locations -----------------------------------------------------------------------

    async def all_locations(self) -> list[Location]:
        return domain.locations(await self._read_directory())

    async def location(self, location_id: str) -> Location | None:
        return domain.find_location(await self._read_directory(), location_id)

    async def put_location(
        self, location_id: str, name: str, priority: int | None, active: bool, fulfillment_service: str | None
    ) -> tuple[Location, bool]:
        """The location as saved, and whether it is new."""
        seen: list[Document | None] = []

        def rule(directory: Document | None) -> Change | None:
            seen.append(directory)
            return domain.put_location(directory, location_id, name, priority, active, fulfillment_service, now_iso())

        saved = await self.locations.apply(domain.LOCATION_DIRECTORY, rule)
        directory = saved if saved is not None else seen[-1]
        self._directory = (time.monotonic(), directory)
        location = domain.find_location(directory, location_id)
        assert location is not None
        return location, domain.find_location(seen[-1], location_id) is None

    async def reorder_locations(self, location_ids: list[str]) -> list[Location]:
        seen: list[Document | None] = []

        def rule(directory: Document | None) -> Change | None:
            seen.append(directory)
            return domain.reorder_locations(directory, location_ids, now_iso())

        saved = await self.locations.apply(domain.LOCATION_DIRECTORY, rule)
        directory = saved if saved is not None else seen[-1]
        self._directory = (time.monotonic(), directory)
        return domain.locations(directory)

    async def _read_directory(self) -> Document | None:
        directory = await self.locations.get(domain.LOCATION_DIRECTORY)
        self._directory = (time.monotonic(), directory)
        return directory

    async def _recent_directory(self) -> Document | None:
        if self._directory is not None and time.monotonic() - self._directory[0] < DIRECTORY_SECONDS:
            return self._directory[1]
        return await self._read_directory()

    async def _usable_location(self, location_id: str) -> Location | None:
        """The location as recently seen if it was active then; otherwise as it is now."""
        location = domain.find_location(await self._recent_directory(), location_id)
        if location is not None and location.active:
            return location
        return domain.find_location(await self._read_directory(), location_id)

    # --- stock by hand -------------------------------------------------------------------

    async def set_on_hand(self, location_id: str, sku: str, on_hand: int) -> StockLevel:
        await self._known_location(location_id)
        changed = await self.stock.change(
            location_id, sku, partial(domain.set_on_hand, on_hand=on_hand), {"kind": "set", "on_hand": on_hand}
        )
        return changed.level

    async def adjust(self, location_id: str, sku: str, delta: int, reason: str) -> StockLevel:
        await self._known_location(location_id)
        changed = await self.stock.change(
            location_id,
            sku,
            partial(domain.adjust, delta=delta),
            {"kind": "adjustment", "delta": delta, "reason": reason},
        )
        return changed.level

    async def stock_of(self, sku: str) -> list[StockLevel]:
        """A sku's stock at every location that has a record of it, by location priority."""
        rank = {location.id: index for index, location in enumerate(domain.locations(await self._recent_directory()))}
        levels = await self.stock.levels_of_sku(sku)
        return sorted(levels, key=lambda level: (rank.get(level.location_id, len(rank)), level.location_id))

    async def _known_location(self, location_id: str) -> Location:
        """Locations are never deleted: one seen recently is still there."""
        location = domain.find_location(await self._recent_directory(), location_id)
        if location is None:
            location = await self.location(location_id)
        if location is None:
            raise domain.UnknownLocation([location_id])
        return location

    # --- fulfillment's requests ----------------------------------------------------------

    async def reserve(
        self, event_id: str, fulfillment_order: FulfillmentOrderSnapshot, previous_location_id: str | None = None
    ) -> None:
        """Hold stock for a fulfillment order at its location, all lines or none; when it moved,
        first let go of what it held at its previous location."""
        fo = fulfillment_order
        moved_from = previous_location_id if previous_location_id not in (None, fo.location_id) else None
        if moved_from is None and not domain.wants_stock(fo):
            return  # nothing held elsewhere to let go of, nothing to hold: not inventory's business

        async def step(record: Record) -> Moves:
            moves = Moves()
            if moved_from is not None:
                skus = set(domain.lines_to_reserve(fo)) | set(
                    domain.record_location_holds(record.public).get(moved_from, [])
                )
                await self._release_at(record, fo.id, moved_from, skus, moves)
            if fo.location_id is not None and domain.wants_stock(fo):
                await self._reserve_all_or_none(record, event_id, fo, fo.location_id, moves, moved_from is None)
            return moves

        await self._for_record(event_id, fo.order_id, fo.id, step)

    async def release(self, event_id: str, fulfillment_order: FulfillmentOrderSnapshot) -> None:
        """Let go of everything a fulfillment order still holds, wherever it holds it."""
        fo = fulfillment_order

        async def step(record: Record) -> Moves:
            moves = Moves()
            for location_id, skus in sorted(domain.release_targets(record.public, fo).items()):
                await self._release_at(record, fo.id, location_id, skus, moves)
            return moves

        await self._for_record(event_id, fo.order_id, fo.id, step)

    async def commit(self, event_id: str, fulfillment: FulfillmentSnapshot) -> None:
        """A fulfillment shipped: its units leave on_hand and its fulfillment order's hold (and
        come straight back if the order was cancelled with restock before this reached us)."""
        location_id = fulfillment.location_id
        if location_id is None:
            return  # digital: no stock moves
        fo_id, order_id = fulfillment.fulfillment_order_id, fulfillment.order_id
        shipped = domain.lines_shipped(fulfillment)

        async def step(record: Record) -> Moves:
            moves = Moves()
            restock_now = bool(record.note and record.note.get("restock"))
            rides = not restock_now and domain.answers_ride_with_stock(
                record.public, record.unsent, location_id, shipped
            )
            committed: dict[str, int] = {}
            for sku, quantity in shipped.items():
                recorded = domain.recorded_commits(record.public, location_id, sku)
                took = partial(_taken, recorded=recorded, fulfillment_order_id=fo_id, fulfillment_id=fulfillment.id)
                # One sku: this change is the request's only one, so its answer is known with it.
                announce = (
                    answering(event_id, order_id, fo_id, partial(_committed, location_id, sku, took)) if rides else None
                )
                rule = partial(
                    domain.commit,
                    recorded=recorded,
                    fulfillment_id=fulfillment.id,
                    fulfillment_order_id=fo_id,
                    quantity=quantity,
                )
                cause = {"kind": "commit", "fulfillment_id": fulfillment.id}
                level = moves.took(await self.stock.change(location_id, sku, rule, cause, announce))
                committed[sku] = took(level)
                if committed[sku] < quantity:
                    log.warning(
                        "fulfillment %s shipped %d of %s from %s but the stock records had only %d",
                        fulfillment.id, quantity, sku, location_id, committed[sku],
                    )  # fmt: skip
            moves.movements.append(Movement("committed", location_id, committed))
            if restock_now:
                await self._restock_at(record, fo_id, location_id, list(committed), moves)
            return moves

        await self._for_record(event_id, order_id, fo_id, step, note_of=order_id)

    async def cancel_commit(
        self, event_id: str, fulfillment: FulfillmentSnapshot, fulfillment_order: FulfillmentOrderSnapshot
    ) -> None:
        """A cancelled fulfillment did not ship: its units come back, held again for their
        fulfillment order while it still wants them."""
        location_id = fulfillment.location_id
        if location_id is None:
            return
        fo_id = fulfillment.fulfillment_order_id

        async def step(record: Record) -> Moves:
            moves = Moves()
            hold_again = domain.holds_again_after_cancelled_fulfillment(fulfillment_order, record.note is not None)
            back: dict[str, int] = {}
            for sku in domain.lines_shipped(fulfillment):
                recorded = domain.recorded_commits(record.public, location_id, sku)
                rule = partial(
                    domain.cancel_commit,
                    recorded=recorded,
                    fulfillment_id=fulfillment.id,
                    fulfillment_order_id=fo_id,
                    hold_again=hold_again,
                )
                cause = {"kind": "cancel_commit", "fulfillment_id": fulfillment.id}
                level = moves.took(await self.stock.change(location_id, sku, rule, cause))
                done = domain.commits_at(level, fo_id, recorded).get(fulfillment.id)
                announced = domain.recorded_commit_state(record.public, fulfillment.id, location_id, sku)
                if done is not None and done.state == CommitState.CANCELLED and announced != CommitState.CANCELLED:
                    back[sku] = done.quantity
            # Held again: the units are reserved for the fulfillment order once more; else just back.
            if back:
                moves.movements.append(Movement("reserved" if hold_again else "restocked", location_id, back))
            return moves

        await self._for_record(event_id, fulfillment.order_id, fo_id, step, note_of=fulfillment.order_id)

    async def cancel_order(self, event_id: str, cancelled: OrderCancelled) -> None:
        """An order was cancelled: what its fulfillment orders hold is released and, with
        restock, what they shipped comes back on hand at the location it left."""
        order_id = cancelled.order.id
        await self.reservations.apply(
            cancellation_note_id(order_id),
            lambda doc: domain.note_order_cancelled(doc, cancelled, now_iso()),
            event_id=event_id,
        )

        async def step(record: Record) -> Moves:
            moves = Moves()
            fo_id = record.public["id"] if record.public else ""
            if cancelled.restock:
                for location_id, skus in sorted(domain.record_committed(record.public).items()):
                    await self._restock_at(record, fo_id, location_id, skus, moves)
            for location_id, skus in sorted(domain.record_location_holds(record.public).items()):
                await self._release_at(record, fo_id, location_id, skus, moves)
            return moves

        for summary in await self.reservations_of(order_id, everything=True):
            await self._for_record(event_id, order_id, summary["id"], step)

    async def reservations_of(self, order_id: str, everything: bool = False) -> list[Document]:
        """An order's reservation records, oldest first: the first page, or all of them."""
        found: list[Document] = []
        while True:
            page = await self.reservations.find(
                {"order_id": {"$eq": order_id}}, sort=[("created_at", 1)], skip=len(found), limit=RECORDS_PAGE
            )
            found.extend(page)
            if not everything or len(page) < RECORDS_PAGE:
                return found

    # --- steps ---------------------------------------------------------------------------

    async def _for_record(
        self, event_id: str, order_id: str, fo_id: str, step: Step, note_of: str | None = None
    ) -> None:
        """Read the fulfillment order's record, move stock (`step`), and write the record with
        what was moved, only if the record did not change meanwhile; else all over again."""
        sent: set[str] = set()  # answers written with stock changes, by this attempt or an earlier one
        for _ in range(self.RECORD_ATTEMPTS):
            record = await self._read_record(fo_id, note_of)
            if record.applied(event_id):
                return
            moves = await step(record)
            self.faults.reached("inventory.after_stock_update")
            sent |= moves.sent
            change = domain.record_movements(
                record.public, event_id, order_id, fo_id, moves.levels, moves.movements, now_iso(), sent
            )
            if change is not None:
                saved = await self.reservations.save(fo_id, record.stored, change, event_id=event_id)
                if saved is None:
                    continue  # another request of this fulfillment order came first: decide again
            for level in moves.levels:
                keys = [key for key, mark in level.marks.items() if mark.fulfillment_order_id == fo_id]
                self.stock.settled(level.location_id, level.sku, keys)
            if change is not None:
                self.faults.reached("inventory.after_reservation_write")
            return
        raise ConcurrencyConflict(f"reservations/{fo_id} kept changing")

    async def _read_record(self, fo_id: str, note_of: str | None) -> Record:
        """One round trip: the record, and the order's cancellation note when asked for."""
        if note_of is None:
            return Record(await self.reservations.collection.find_one({"_id": fo_id}))
        note_id = cancellation_note_id(note_of)
        found = {doc["_id"]: doc async for doc in self.reservations.collection.find({"_id": {"$in": [fo_id, note_id]}})}
        return Record(found.get(fo_id), found.get(note_id))

    async def _reserve_all_or_none(
        self,
        record: Record,
        event_id: str,
        fo: FulfillmentOrderSnapshot,
        location_id: str,
        moves: Moves,
        may_ride: bool,
    ) -> None:
        """One conditional write per sku; if any line is short, the lines already held are let
        go again (compensation) and the request fails with every shortage named."""
        wanted = domain.lines_to_reserve(fo)
        location = await self._usable_location(location_id)
        if location is None or not location.active:
            shortages = [Shortage(sku=sku, requested=q, available=0) for sku, q in wanted.items()]
            moves.movements.append(Movement("reservation_failed", location_id, wanted, shortages) if wanted else
                                   Movement("reserved", location_id, {}))  # fmt: skip
            return
        announce: Announce | None = None
        if may_ride and domain.answers_ride_with_stock(record.public, record.unsent, location_id, wanted):
            # One sku: if its hold is written, the request is answered, in the same write.
            announce = answering(event_id, fo.order_id, fo.id, lambda _: Movement("reserved", location_id, wanted))
        held: list[str] = []
        shortages = []
        for sku, quantity in wanted.items():
            if shortages:
                # Already failing: only look, to name every short line.
                level = await self.stock.level(location_id, sku)
                if fo.id not in level.holds and quantity > level.available:
                    shortages.append(
                        Shortage(sku=sku, requested=quantity, available=max(level.available, 0), seq=level.seq)
                    )
                continue
            rule = partial(domain.reserve, fulfillment_order_id=fo.id, quantity=quantity)
            changed = await self.stock.change(
                location_id, sku, rule, {"kind": "reserve", "fulfillment_order_id": fo.id}, announce
            )
            moves.took(changed)
            if isinstance(changed.outcome, Shortage):
                shortages.append(changed.outcome)
            else:
                held.append(sku)
        if not shortages:
            moves.movements.append(Movement("reserved", location_id, wanted))
            return
        for sku in held:
            changed_back = await self.stock.change(
                location_id, sku, partial(domain.release, fulfillment_order_id=fo.id),
                {"kind": "release", "fulfillment_order_id": fo.id, "why": "compensation"},
            )  # fmt: skip
            moves.took(changed_back)
        moves.movements.append(Movement("reservation_failed", location_id, wanted, shortages))

    async def _release_at(
        self, record: Record, fo_id: str, location_id: str, skus: Iterable[str], moves: Moves
    ) -> None:
        released: dict[str, int] = {}
        for sku in sorted(skus):
            changed = await self.stock.change(
                location_id, sku, partial(domain.release, fulfillment_order_id=fo_id),
                {"kind": "release", "fulfillment_order_id": fo_id},
            )  # fmt: skip
            level = moves.took(changed)
            # After a crash the hold may be gone already: what the record announced tells how much.
            released[sku] = max(
                changed.outcome.moved, domain.recorded_hold(record.public, location_id, sku) - level.holds.get(fo_id, 0)
            )
        moves.movements.append(Movement("released", location_id, released))

    async def _restock_at(
        self, record: Record, fo_id: str, location_id: str, skus: Iterable[str], moves: Moves
    ) -> None:
        returned: dict[str, int] = {}
        for sku in sorted(skus):
            recorded = domain.recorded_commits(record.public, location_id, sku)
            changed = await self.stock.change(
                location_id, sku, partial(domain.restock, recorded=recorded, fulfillment_order_id=fo_id),
                {"kind": "restock", "fulfillment_order_id": fo_id},
            )  # fmt: skip
            level = moves.took(changed)
            returned[sku] = sum(
                done.quantity
                for fid, done in domain.commits_at(level, fo_id, recorded).items()
                if done.state == CommitState.RESTOCKED
                and domain.recorded_commit_state(record.public, fid, location_id, sku) != CommitState.RESTOCKED
            )
        moves.movements.append(Movement("restocked", location_id, returned))


def answering(event_id: str, order_id: str, fo_id: str, movement: Callable[[StockLevel], Movement]) -> Announce:
    """What a stock change announces besides its level: the answer to the request, as the
    change makes it (the same event the record would send, so never both)."""

    def announce(level: StockLevel) -> list[CloudEvent]:
        return [domain.movement_event(event_id, order_id, fo_id, movement(level))]

    return announce


def _taken(level: StockLevel, recorded: domain.Recorded, fulfillment_order_id: str, fulfillment_id: str) -> int:
    """Units a fulfillment took from this stock, as far as it and the record know."""
    done = domain.commits_at(level, fulfillment_order_id, recorded).get(fulfillment_id)
    return done.quantity if done else 0


def _committed(location_id: str, sku: str, took: Callable[[StockLevel], int], level: StockLevel) -> Movement:
    return Movement("committed", location_id, {sku: took(level)})
