"""Inventory's use cases, as its routes and handlers call them: locations, stock by hand, and
what fulfillment and orders ask for (each request in steps that make a crash harmless, see
`steps`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from services.inventory.application.faults import FaultPoints
from services.inventory.application.locations import Locations
from services.inventory.application.steps import RELEASE, RESTOCK, Moves, Steps, answering, taken
from services.inventory.domain import requests, reservations, stock
from services.inventory.domain.reservations import Movement, ReservationRecord
from services.inventory.domain.stock import CommitState, StockLevel
from services.inventory.store import Record, ReservationStore, StockStore, cancellation_note_id
from shared.catalog import FulfillmentOrderSnapshot, FulfillmentSnapshot, OrderCancelled
from shared.clock import now_iso

log = logging.getLogger(__name__)


class Inventory:
    """Locations, stock, and the reservation record of each fulfillment order."""

    def __init__(
        self,
        stock: StockStore,
        reservations: ReservationStore,
        locations: Locations,
        faults: FaultPoints | None = None,
    ) -> None:
        self.stock = stock
        self.reservations = reservations
        self.locations = locations
        self.steps = Steps(stock, reservations, locations, faults or FaultPoints())

    # --- stock by hand -------------------------------------------------------------------

    async def set_on_hand(self, location_id: str, sku: str, on_hand: int) -> StockLevel:
        await self.locations.known(location_id)
        rule = partial(stock.set_on_hand, on_hand=on_hand)
        return (await self.stock.change(location_id, sku, rule, {"kind": "set", "on_hand": on_hand})).level

    async def adjust(self, location_id: str, sku: str, delta: int, reason: str) -> StockLevel:
        await self.locations.known(location_id)
        cause = {"kind": "adjustment", "delta": delta, "reason": reason}
        return (await self.stock.change(location_id, sku, partial(stock.adjust, delta=delta), cause)).level

    async def set_bin(self, location_id: str, sku: str, bin_code: str | None) -> StockLevel:
        """Where the sku is kept at the location; announced with the stock's level."""
        await self.locations.known(location_id)
        rule = partial(stock.set_bin, bin_code=bin_code)
        return (await self.stock.change(location_id, sku, rule, {"kind": "bin", "bin": bin_code})).level

    async def stock_of(self, sku: str) -> list[StockLevel]:
        """A sku's stock at every location that has a record of it, by location priority."""
        rank = await self.locations.ranks()
        levels = await self.stock.levels_of_sku(sku)
        return sorted(levels, key=lambda level: (rank.get(level.location_id, len(rank)), level.location_id))

    # --- reservation records -------------------------------------------------------------

    async def reservation(self, fulfillment_order_id: str) -> ReservationRecord | None:
        return await self.reservations.get(fulfillment_order_id)

    async def reservations_of(self, order_id: str, everything: bool = False) -> list[ReservationRecord]:
        """An order's reservation records, oldest first: the first page, or all of them."""
        return await self.reservations.of_order(order_id, everything)

    # --- fulfillment's requests ----------------------------------------------------------

    async def reserve(
        self, event_id: str, fulfillment_order: FulfillmentOrderSnapshot, previous_location_id: str | None = None
    ) -> None:
        """Hold stock for a fulfillment order at its location, all lines or none; when it moved,
        first let go of what it held at its previous location."""
        fo = fulfillment_order
        moved_from = previous_location_id if previous_location_id not in (None, fo.location_id) else None
        if moved_from is None and not requests.wants_stock(fo):
            return  # nothing held elsewhere to let go of, nothing to hold: not inventory's business

        async def step(record: Record) -> Moves:
            moves = Moves()
            if moved_from is not None:
                held = reservations.record_location_holds(record.record).get(moved_from, [])
                skus = set(requests.lines_to_reserve(fo)) | set(held)
                await self.steps.give_back(RELEASE, record, fo.id, moved_from, skus, moves)
            if fo.location_id is not None and requests.wants_stock(fo):
                await self.steps.reserve_all_or_none(record, event_id, fo, fo.location_id, moves, moved_from is None)
            return moves

        await self.steps.for_record(event_id, fo.order_id, fo.id, step)

    async def release(self, event_id: str, fulfillment_order: FulfillmentOrderSnapshot) -> None:
        """Let go of everything a fulfillment order still holds, wherever it holds it."""
        fo = fulfillment_order

        async def step(record: Record) -> Moves:
            moves = Moves()
            for location_id, skus in sorted(reservations.release_targets(record.record, fo).items()):
                await self.steps.give_back(RELEASE, record, fo.id, location_id, skus, moves)
            return moves

        await self.steps.for_record(event_id, fo.order_id, fo.id, step)

    async def commit(self, event_id: str, fulfillment: FulfillmentSnapshot) -> None:
        """A fulfillment shipped: its units leave on_hand and its fulfillment order's hold (and
        come straight back if the order was cancelled with restock before this reached us)."""
        location_id = fulfillment.location_id
        if location_id is None:
            return  # digital: no stock moves
        fo_id, order_id = fulfillment.fulfillment_order_id, fulfillment.order_id
        shipped = requests.lines_shipped(fulfillment)

        async def step(record: Record) -> Moves:
            moves = Moves()
            restock_now = record.note is not None and record.note.restock
            rides = not restock_now and reservations.answers_ride_with_stock(
                record.record, record.unsent, location_id, shipped
            )
            committed: dict[str, int] = {}
            for sku, quantity in shipped.items():
                recorded = reservations.recorded_commits(record.record, location_id, sku)
                took = partial(taken, recorded=recorded, fulfillment_order_id=fo_id, fulfillment_id=fulfillment.id)
                # One sku: this change is the request's only one, so its answer is known with it.
                announce = (
                    answering(event_id, order_id, fo_id, partial(_committed, location_id, sku, took)) if rides else None
                )
                rule = partial(stock.commit, quantity=quantity)
                level = await self.steps.fulfillment_change(
                    fulfillment, location_id, sku, recorded, rule, "commit", moves, announce
                )
                committed[sku] = took(level)
                if committed[sku] < quantity:
                    log.warning(
                        "fulfillment %s shipped %d of %s from %s but the stock records had only %d",
                        fulfillment.id, quantity, sku, location_id, committed[sku],
                    )  # fmt: skip
            moves.movements.append(Movement("committed", location_id, committed))
            if restock_now:
                await self.steps.give_back(RESTOCK, record, fo_id, location_id, list(committed), moves)
            return moves

        await self.steps.for_record(event_id, order_id, fo_id, step, note_of=order_id)

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
            hold_again = requests.holds_again_after_cancelled_fulfillment(fulfillment_order, record.note is not None)
            rule = partial(stock.cancel_commit, hold_again=hold_again)
            back: dict[str, int] = {}
            for sku in requests.lines_shipped(fulfillment):
                recorded = reservations.recorded_commits(record.record, location_id, sku)
                level = await self.steps.fulfillment_change(
                    fulfillment, location_id, sku, recorded, rule, "cancel_commit", moves
                )
                done = stock.commits_at(level, fo_id, recorded).get(fulfillment.id)
                announced = reservations.recorded_commit_state(record.record, fulfillment.id, location_id, sku)
                if done is not None and done.state == CommitState.CANCELLED and announced != CommitState.CANCELLED:
                    back[sku] = done.quantity
            # Held again: the units are reserved for the fulfillment order once more; else just back.
            if back:
                moves.movements.append(Movement("reserved" if hold_again else "restocked", location_id, back))
            return moves

        await self.steps.for_record(event_id, fulfillment.order_id, fo_id, step, note_of=fulfillment.order_id)

    async def cancel_order(self, event_id: str, cancelled: OrderCancelled) -> None:
        """An order was cancelled: what its fulfillment orders hold is released and, with
        restock, what they shipped comes back on hand at the location it left."""
        order_id = cancelled.order.id
        await self.reservations.notes.apply(
            cancellation_note_id(order_id),
            partial(requests.note_order_cancelled, cancelled=cancelled, now=now_iso()),
            event_id=event_id,
        )

        async def step(record: Record) -> Moves:
            moves = Moves()
            fo_id = record.record.fulfillment_order_id if record.record else ""
            if cancelled.restock:
                for location_id, skus in sorted(reservations.record_committed(record.record).items()):
                    await self.steps.give_back(RESTOCK, record, fo_id, location_id, skus, moves)
            for location_id, skus in sorted(reservations.record_location_holds(record.record).items()):
                await self.steps.give_back(RELEASE, record, fo_id, location_id, skus, moves)
            return moves

        for summary in await self.reservations_of(order_id, everything=True):
            await self.steps.for_record(event_id, order_id, summary.fulfillment_order_id, step)


def _committed(location_id: str, sku: str, took: Callable[[StockLevel], int], level: StockLevel) -> Movement:
    return Movement("committed", location_id, {sku: took(level)})
