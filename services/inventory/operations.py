"""What inventory does for a request, in the order that makes a crash harmless.

A request from fulfillment touches several stock documents (one per sku) and the reservation
record of one fulfillment order; there are no multi-document transactions. So:

1. the stock effects come first, each one idempotent (a hold is keyed by fulfillment order, a
   commit by fulfillment) and written with its level event in one conditional write;
2. then the reservation record is written with the inventory.* events and the request's event
   id (inbox) in one write.

A crash between 1 and 2 leaves the event unrecorded, so Kafka redelivers it: the stock effects
find themselves done and move nothing, and what the events announce is read off the stock (the
truth) against the record (what was announced), so nothing is lost or announced twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

from services.inventory import domain
from services.inventory.domain import CommitState, Movement, StockLevel
from services.inventory.store import StockStore
from shared.catalog import (
    FulfillmentOrderSnapshot,
    FulfillmentSnapshot,
    Location,
    OrderCancelled,
    Shortage,
)
from shared.store import AggregateStore, Document, now_iso

log = logging.getLogger(__name__)


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


class Inventory:
    """Locations, stock, and the reservation record of each fulfillment order."""

    def __init__(
        self,
        stock: StockStore,
        reservations: AggregateStore,
        locations: AggregateStore,
        cancellations: AggregateStore,
        faults: FaultPoints | None = None,
    ) -> None:
        self.stock = stock
        self.reservations = reservations
        self.locations = locations
        self.cancellations = cancellations
        self.faults = faults or FaultPoints()
        self._indexed = False

    # --- locations -----------------------------------------------------------------------

    async def all_locations(self) -> list[Location]:
        return domain.locations(await self.locations.get(domain.LOCATION_DIRECTORY))

    async def location(self, location_id: str) -> Location | None:
        return domain.find_location(await self.locations.get(domain.LOCATION_DIRECTORY), location_id)

    async def put_location(
        self, location_id: str, name: str, priority: int | None, active: bool, fulfillment_service: str | None
    ) -> tuple[Location, bool]:
        """The location as saved, and whether it is new."""
        existed = await self.location(location_id) is not None
        await self.locations.apply(
            domain.LOCATION_DIRECTORY,
            lambda directory: domain.put_location(
                directory, location_id, name, priority, active, fulfillment_service, now_iso()
            ),
        )
        saved = await self.location(location_id)
        assert saved is not None
        return saved, not existed

    async def reorder_locations(self, location_ids: list[str]) -> list[Location]:
        await self.locations.apply(
            domain.LOCATION_DIRECTORY, lambda directory: domain.reorder_locations(directory, location_ids, now_iso())
        )
        return await self.all_locations()

    # --- stock by hand -------------------------------------------------------------------

    async def set_on_hand(self, location_id: str, sku: str, on_hand: int) -> StockLevel:
        await self._known_location(location_id)
        level, _ = await self.stock.change(
            location_id, sku, partial(domain.set_on_hand, on_hand=on_hand), {"kind": "set", "on_hand": on_hand}
        )
        return level

    async def adjust(self, location_id: str, sku: str, delta: int, reason: str) -> StockLevel:
        await self._known_location(location_id)
        level, _ = await self.stock.change(
            location_id,
            sku,
            partial(domain.adjust, delta=delta),
            {"kind": "adjustment", "delta": delta, "reason": reason},
        )
        return level

    async def stock_of(self, sku: str) -> list[StockLevel]:
        """A sku's stock at every location that has a record of it, by location priority."""
        rank = {location.id: index for index, location in enumerate(await self.all_locations())}
        levels = await self.stock.levels_of_sku(sku)
        return sorted(levels, key=lambda level: (rank.get(level.location_id, len(rank)), level.location_id))

    async def _known_location(self, location_id: str) -> Location:
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
        applied, record = await self._record(fo.id, event_id)
        if applied:
            return
        levels: list[StockLevel] = []
        movements: list[Movement] = []
        if previous_location_id and previous_location_id != fo.location_id:
            skus = set(domain.lines_to_reserve(fo)) | set(
                domain.record_location_holds(record).get(previous_location_id, [])
            )
            await self._release_at(record, fo.id, previous_location_id, skus, levels, movements)
        if fo.location_id is not None and domain.wants_stock(fo):
            await self._reserve_all_or_none(fo.id, fo.location_id, domain.lines_to_reserve(fo), levels, movements)
        await self._record_movements(event_id, fo.order_id, fo.id, levels, movements)

    async def release(self, event_id: str, fulfillment_order: FulfillmentOrderSnapshot) -> None:
        """Let go of everything a fulfillment order still holds, wherever it holds it."""
        fo = fulfillment_order
        applied, record = await self._record(fo.id, event_id)
        if applied:
            return
        targets = domain.record_location_holds(record)
        if fo.location_id is not None:
            targets[fo.location_id] = sorted(set(targets.get(fo.location_id, [])) | {li.sku for li in fo.line_items})
        levels: list[StockLevel] = []
        movements: list[Movement] = []
        for location_id, skus in sorted(targets.items()):
            await self._release_at(record, fo.id, location_id, skus, levels, movements)
        await self._record_movements(event_id, fo.order_id, fo.id, levels, movements)

    async def commit(self, event_id: str, fulfillment: FulfillmentSnapshot) -> None:
        """A fulfillment shipped: its units leave on_hand and its fulfillment order's hold."""
        location_id = fulfillment.location_id
        if location_id is None:
            return  # digital: no stock moves
        fo_id = fulfillment.fulfillment_order_id
        applied, record = await self._record(fo_id, event_id)
        if applied:
            return
        cancelled = await self.cancellations.get(fulfillment.order_id)
        levels: list[StockLevel] = []
        committed: dict[str, int] = {}
        for sku, quantity in domain.lines_shipped(fulfillment).items():
            rule = partial(
                domain.commit,
                fulfillment_id=fulfillment.id,
                fulfillment_order_id=fo_id,
                order_id=fulfillment.order_id,
                quantity=quantity,
            )
            level, _ = await self.stock.change(
                location_id, sku, rule, {"kind": "commit", "fulfillment_id": fulfillment.id}
            )
            levels.append(level)
            done = level.commits.get(fulfillment.id)
            committed[sku] = done.quantity if done else 0
            if committed[sku] < quantity:
                log.warning(
                    "fulfillment %s shipped %d of %s from %s but the stock records had only %d",
                    fulfillment.id, quantity, sku, location_id, committed[sku],
                )  # fmt: skip
        movements = [Movement("committed", location_id, committed)]
        if cancelled is not None and cancelled.get("restock"):
            # The order was cancelled with restock before this shipment reached us: it comes back.
            await self._restock_at(record, fo_id, location_id, list(committed), levels, movements)
        await self._record_movements(event_id, fulfillment.order_id, fo_id, levels, movements)

    async def cancel_commit(
        self, event_id: str, fulfillment: FulfillmentSnapshot, fulfillment_order: FulfillmentOrderSnapshot
    ) -> None:
        """A cancelled fulfillment did not ship: its units come back, held again for their
        fulfillment order while it still wants them."""
        location_id = fulfillment.location_id
        if location_id is None:
            return
        fo_id = fulfillment.fulfillment_order_id
        applied, record = await self._record(fo_id, event_id)
        if applied:
            return
        order_cancelled = await self.cancellations.get(fulfillment.order_id) is not None
        hold_again = domain.holds_again_after_cancelled_fulfillment(fulfillment_order, order_cancelled)
        levels: list[StockLevel] = []
        back: dict[str, int] = {}
        for sku in domain.lines_shipped(fulfillment):
            rule = partial(domain.cancel_commit, fulfillment_id=fulfillment.id, hold_again=hold_again)
            level, _ = await self.stock.change(
                location_id, sku, rule, {"kind": "cancel_commit", "fulfillment_id": fulfillment.id}
            )
            levels.append(level)
            done = level.commits.get(fulfillment.id)
            announced = domain.recorded_commit_state(record, fulfillment.id, location_id, sku)
            if done is not None and done.state == CommitState.CANCELLED and announced != CommitState.CANCELLED:
                back[sku] = done.quantity
        # Held again: the units are reserved for the fulfillment order once more; else just back.
        movements = [Movement("reserved" if hold_again else "restocked", location_id, back)] if back else []
        await self._record_movements(event_id, fulfillment.order_id, fo_id, levels, movements)

    async def cancel_order(self, event_id: str, cancelled: OrderCancelled) -> None:
        """An order was cancelled: what its fulfillment orders hold is released and, with
        restock, what they shipped comes back on hand at the location it left."""
        order_id = cancelled.order.id
        await self.cancellations.apply(
            order_id, lambda doc: domain.note_order_cancelled(doc, cancelled, now_iso()), event_id=event_id
        )
        for summary in await self.reservations_of(order_id):
            fo_id = summary["id"]
            applied, record = await self._record(fo_id, event_id)
            if applied:
                continue
            levels: list[StockLevel] = []
            movements: list[Movement] = []
            if cancelled.restock:
                for location_id, skus in sorted(domain.record_committed(record).items()):
                    await self._restock_at(record, fo_id, location_id, skus, levels, movements)
            for location_id, skus in sorted(domain.record_location_holds(record).items()):
                await self._release_at(record, fo_id, location_id, skus, levels, movements)
            await self._record_movements(event_id, order_id, fo_id, levels, movements)

    async def reservations_of(self, order_id: str) -> list[Document]:
        await self._ensure_indexes()
        return await self.reservations.find({"order_id": order_id}, sort=[("created_at", 1)])

    async def _ensure_indexes(self) -> None:
        if not self._indexed:
            await self.reservations.collection.create_index("order_id")
            self._indexed = True

    # --- steps ---------------------------------------------------------------------------

    async def _reserve_all_or_none(
        self,
        fo_id: str,
        location_id: str,
        wanted: Mapping[str, int],
        levels: list[StockLevel],
        movements: list[Movement],
    ) -> None:
        """One conditional write per sku; if any line is short, the lines already held are let
        go again (compensation) and the request fails with every shortage named."""
        location = await self.location(location_id)
        if location is None or not location.active:
            shortages = [Shortage(sku=sku, requested=q, available=0) for sku, q in wanted.items()]
            movements.append(Movement("reservation_failed", location_id, wanted, shortages) if wanted else
                             Movement("reserved", location_id, {}))  # fmt: skip
            return
        held: list[str] = []
        shortages = []
        for sku, quantity in wanted.items():
            if shortages:
                # Already failing: only look, to name every short line.
                level = await self.stock.level(location_id, sku)
                if fo_id not in level.holds and quantity > level.available:
                    shortages.append(
                        Shortage(sku=sku, requested=quantity, available=max(level.available, 0), seq=level.seq)
                    )
                continue
            rule = partial(domain.reserve, fulfillment_order_id=fo_id, quantity=quantity)
            level, outcome = await self.stock.change(
                location_id, sku, rule, {"kind": "reserve", "fulfillment_order_id": fo_id}
            )
            levels.append(level)
            if isinstance(outcome, Shortage):
                shortages.append(outcome)
            else:
                held.append(sku)
        if not shortages:
            movements.append(Movement("reserved", location_id, wanted))
            return
        for sku in held:
            level, _ = await self.stock.change(
                location_id, sku, partial(domain.release, fulfillment_order_id=fo_id),
                {"kind": "release", "fulfillment_order_id": fo_id, "why": "compensation"},
            )  # fmt: skip
            levels.append(level)
        movements.append(Movement("reservation_failed", location_id, wanted, shortages))

    async def _release_at(
        self,
        record: Document | None,
        fo_id: str,
        location_id: str,
        skus: Iterable[str],
        levels: list[StockLevel],
        movements: list[Movement],
    ) -> None:
        released: dict[str, int] = {}
        for sku in sorted(skus):
            level, effect = await self.stock.change(
                location_id, sku, partial(domain.release, fulfillment_order_id=fo_id),
                {"kind": "release", "fulfillment_order_id": fo_id},
            )  # fmt: skip
            levels.append(level)
            # After a crash the hold may be gone already: what the record announced tells how much.
            released[sku] = max(
                effect.moved, domain.recorded_hold(record, location_id, sku) - level.holds.get(fo_id, 0)
            )
        movements.append(Movement("released", location_id, released))

    async def _restock_at(
        self,
        record: Document | None,
        fo_id: str,
        location_id: str,
        skus: Iterable[str],
        levels: list[StockLevel],
        movements: list[Movement],
    ) -> None:
        returned: dict[str, int] = {}
        for sku in sorted(skus):
            level, _ = await self.stock.change(
                location_id, sku, partial(domain.restock, fulfillment_order_id=fo_id),
                {"kind": "restock", "fulfillment_order_id": fo_id},
            )  # fmt: skip
            levels.append(level)
            returned[sku] = sum(
                done.quantity
                for fid, done in level.commits.items()
                if done.fulfillment_order_id == fo_id
                and done.state == CommitState.RESTOCKED
                and domain.recorded_commit_state(record, fid, location_id, sku) != CommitState.RESTOCKED
            )
        movements.append(Movement("restocked", location_id, returned))

    async def _record(self, fo_id: str, event_id: str) -> tuple[bool, Document | None]:
        """Whether this event was applied to the fulfillment order's record, and the record."""
        raw = await self.reservations.collection.find_one({"_id": fo_id})
        if raw is None:
            return False, None
        if event_id in raw.get("inbox", {}):
            return True, None
        public = {k: v for k, v in raw.items() if k not in ("_id", "inbox", "outbox", "outbox_pending")}
        return False, {"id": raw["_id"], **public}

    async def _record_movements(
        self, event_id: str, order_id: str, fo_id: str, levels: list[StockLevel], movements: list[Movement]
    ) -> None:
        self.faults.reached("inventory.after_stock_update")
        await self.reservations.apply(
            fo_id,
            lambda record: domain.record_movements(record, order_id, fo_id, levels, movements, now_iso()),
            event_id=event_id,
        )
        self.faults.reached("inventory.after_reservation_write")
