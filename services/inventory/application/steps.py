"""The steps of a request from fulfillment, in the order that makes a crash harmless.

A request touches one or more stock documents (one per sku) and the reservation record of one
fulfillment order; there are no multi-document transactions. So:

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
`reservations.answers_ride_with_stock`); the record then carries no event and costs no relay.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from services.inventory.application.faults import FaultPoints
from services.inventory.application.locations import Locations
from services.inventory.domain import requests, reservations, stock
from services.inventory.domain.reservations import Movement, ReservationRecord
from services.inventory.domain.stock import Effect, Recorded, StockLevel
from services.inventory.store import Announce, Changed, Record, ReservationStore, StockStore
from shared.catalog import FulfillmentOrderSnapshot, FulfillmentSnapshot, Shortage
from shared.clock import now_iso
from shared.events import CloudEvent
from shared.store import ConcurrencyConflict


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


@dataclass(frozen=True)
class GiveBack:
    """Giving back, at one stock, what a fulfillment order has there: its hold (`released`) or
    what its fulfillments shipped (`restocked`). `given` is how many units the change gave back
    that the record has not announced yet (after a crash, the stock may have moved already)."""

    kind: Literal["released", "restocked"]
    cause: str
    rule: Callable[[Recorded, str, StockLevel], Effect]  # (what the record says was taken, fo id, stock)
    given: Callable[[ReservationRecord | None, str, StockLevel, int, Recorded], int]


def _release(recorded: Recorded, fo_id: str, level: StockLevel) -> Effect:
    return stock.release(level, fo_id)  # a hold is live, not history: the record's commits do not matter


def _restock(recorded: Recorded, fo_id: str, level: StockLevel) -> Effect:
    return stock.restock(level, recorded, fo_id)


RELEASE = GiveBack("released", "release", _release, reservations.released)
RESTOCK = GiveBack("restocked", "restock", _restock, reservations.restocked)


class Steps:
    """Reads and writes of one request: the record around it, and the stock changes within."""

    RECORD_ATTEMPTS = 50

    def __init__(
        self, stock: StockStore, reservations: ReservationStore, locations: Locations, faults: FaultPoints
    ) -> None:
        self.stock = stock
        self.reservations = reservations
        self.locations = locations
        self.faults = faults

    async def for_record(
        self, event_id: str, order_id: str, fo_id: str, step: Step, note_of: str | None = None
    ) -> None:
        """Read the fulfillment order's record, move stock (`step`), and write the record with
        what was moved, only if the record did not change meanwhile; else all over again."""
        sent: set[str] = set()  # answers written with stock changes, by this attempt or an earlier one
        for _ in range(self.RECORD_ATTEMPTS):
            record = await self.reservations.read(fo_id, note_of)
            if record.applied(event_id):
                return
            moves = await step(record)
            self.faults.reached("inventory.after_stock_update")
            sent |= moves.sent
            change = reservations.record_movements(
                record.record, event_id, order_id, fo_id, moves.levels, moves.movements, now_iso(), sent
            )
            if change is not None and not await self.reservations.save(fo_id, record, change, event_id):
                continue  # another request of this fulfillment order came first: decide again
            for level in moves.levels:
                keys = [key for key, mark in level.marks.items() if mark.fulfillment_order_id == fo_id]
                self.stock.settled(level.location_id, level.sku, keys)
            if change is not None:
                self.faults.reached("inventory.after_reservation_write")
            return
        raise ConcurrencyConflict(f"reservations/{fo_id} kept changing")

    async def reserve_all_or_none(
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
        wanted = requests.lines_to_reserve(fo)
        location = await self.locations.usable(location_id)
        if location is None or not location.active:
            shortages = [Shortage(sku=sku, requested=q, available=0) for sku, q in wanted.items()]
            moves.movements.append(Movement("reservation_failed", location_id, wanted, shortages) if wanted else
                                   Movement("reserved", location_id, {}))  # fmt: skip
            return
        announce: Announce | None = None
        if may_ride and reservations.answers_ride_with_stock(record.record, record.unsent, location_id, wanted):
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
            rule = partial(stock.reserve, fulfillment_order_id=fo.id, quantity=quantity)
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
                location_id, sku, partial(stock.release, fulfillment_order_id=fo.id),
                {"kind": "release", "fulfillment_order_id": fo.id, "why": "compensation"},
            )  # fmt: skip
            moves.took(changed_back)
        moves.movements.append(Movement("reservation_failed", location_id, wanted, shortages))

    async def give_back(
        self, how: GiveBack, record: Record, fo_id: str, location_id: str, skus: Iterable[str], moves: Moves
    ) -> None:
        """Release or restock (`how`) what a fulfillment order has at one location, sku by sku."""
        given: dict[str, int] = {}
        for sku in sorted(skus):
            recorded = reservations.recorded_commits(record.record, location_id, sku)
            changed = await self.stock.change(
                location_id, sku, partial(how.rule, recorded, fo_id),
                {"kind": how.cause, "fulfillment_order_id": fo_id},
            )  # fmt: skip
            moves.took(changed)
            given[sku] = how.given(record.record, fo_id, changed.level, changed.outcome.moved, recorded)
        moves.movements.append(Movement(how.kind, location_id, given))

    async def fulfillment_change(
        self,
        fulfillment: FulfillmentSnapshot,
        location_id: str,
        sku: str,
        recorded: Recorded,
        rule: Callable[..., Effect],
        cause: str,
        moves: Moves,
        announce: Announce | None = None,
    ) -> StockLevel:
        """One stock change of a fulfillment (`rule`: its commit, or its cancellation; `cause`
        names it in the stock's last change), decided against what its fulfillment order's record
        says was taken there (`recorded`)."""
        fo_id = fulfillment.fulfillment_order_id
        decided = partial(rule, recorded=recorded, fulfillment_id=fulfillment.id, fulfillment_order_id=fo_id)
        what = {"kind": cause, "fulfillment_id": fulfillment.id}
        return moves.took(await self.stock.change(location_id, sku, decided, what, announce))


def answering(event_id: str, order_id: str, fo_id: str, movement: Callable[[StockLevel], Movement]) -> Announce:
    """What a stock change announces besides its level: the answer to the request, as the
    change makes it (the same event the record would send, so never both)."""

    def announce(level: StockLevel) -> list[CloudEvent]:
        return [reservations.movement_event(event_id, order_id, fo_id, movement(level))]

    return announce


def taken(level: StockLevel, recorded: Recorded, fulfillment_order_id: str, fulfillment_id: str) -> int:
    """Units a fulfillment took from this stock, as far as it and the record know."""
    done = stock.commits_at(level, fulfillment_order_id, recorded).get(fulfillment_id)
    return done.quantity if done else 0
