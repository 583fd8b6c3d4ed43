"""The pack run's use cases: keeping what fulfillment knows of each order (from orders' events,
`order_seen`) and running the pack run (`run`): by hand (`POST /pack-runs`) or every
`pack_run_interval_seconds` (services/fulfillment/packer.py), it walks the orders it still has
something to do with, oldest first, decides each (domain.pack_run) and moves what is ready to
packing.

Safe with several replicas: the periodic run takes a lease for one interval (`take_turn`), so
one replica runs it per interval; and every move is the rule `start_packing` under the store's
optimistic concurrency, so a run by hand beside it, or a replica whose lease ran out mid-run,
never moves a fulfillment order twice (the second finds it IN_PROGRESS: nothing to do).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from functools import partial

from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from services.fulfillment.domain import pack_run
from services.fulfillment.domain.fulfillment_orders import packing
from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder, Reservation
from services.fulfillment.domain.order_routing import RoutingRecord
from services.fulfillment.domain.pack_run import OrderView, PackDecision
from services.fulfillment.store import PACK_RUN_LEASES
from shared.catalog import OrderSnapshot
from shared.clock import epoch_now, now_iso
from shared.store import AggregateStore, Change

from .workflows import BATCH, Fulfillment

MAX_ORDERS = 20_000
"""Orders one pack run looks at most (oldest first); the next run takes the rest."""
LEASE_ID = "pack-run"


@dataclass
class PackRunReport:
    """What one pack run did: per order, moved or where it stopped and why."""

    id: str
    trigger: str
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    decisions: list[PackDecision] = field(default_factory=list)
    moved_fulfillment_orders: int = 0

    @property
    def moved_orders(self) -> int:
        return sum(1 for decision in self.decisions if decision.outcome == pack_run.Outcome.MOVED)


class PackRuns:
    def __init__(self, app: Fulfillment, views: AggregateStore[OrderView]) -> None:
        self.app = app
        self.views = views
        self.leases = views.collection.database[PACK_RUN_LEASES]
        self._lease_stored = False
        """The lease document exists (it is never removed): asking for a turn is the update alone."""

    # --- what orders' events say ----------------------------------------------------------

    async def order_seen(
        self,
        order: OrderSnapshot,
        as_of: str,
        event_id: str,
        *,
        repack: bool = False,
        cancelled: bool = False,
        first: bool = False,
    ) -> None:
        """Keep the order's latest snapshot (waiting, paid, draft, number) for the pack run.

        What needs nothing of the stored view costs one write and no read (issue 15): the first
        news of an order (`first`: order.created) is one insert, and a later snapshot that neither
        cancels nor re-packs the order only replaces the one kept if that is not newer
        (pack_run.order_seen), one conditional write. Anything else, or a view missing or there
        already, takes the rule with a read."""

        def rule(current: OrderView | None) -> Change[OrderView] | None:
            return pack_run.order_seen(current, order, as_of, repack=repack, cancelled=cancelled)

        if not (repack or cancelled):
            if first and (new := rule(None)) and await self.views.create(order.id, new, event_id=event_id):
                return
            seen = self.views.mapping.dump(OrderView(order_id=order.id, order=order, as_of=as_of))
            with contextlib.suppress(ValueError):  # an event id that cannot be a field name: the rule
                written = await self.views.set_fields(
                    order.id, {"order": seen["order"], "as_of": as_of}, event_id=event_id,
                    where={"as_of": {"$lte": as_of}},
                )  # fmt: skip
                if written is not None:
                    return  # kept, or a newer snapshot is (or this event was applied already)
        await self.views.apply(order.id, rule, event_id=event_id)

    # --- the run ---------------------------------------------------------------------------

    async def take_turn(self, interval: float, holder: str) -> bool:
        """The periodic run's lease: True when this replica runs now (nobody ran it in the last
        `interval` seconds): replicas take turns, one run per interval between them."""
        now = epoch_now()
        lease = {"holder": holder, "taken_epoch": now, "taken_at": now_iso()}
        # Measured from when the last turn was taken with the interval as it is now: a shortened
        # interval applies at once, not after the turn taken with the longer one.
        taken = await self.leases.update_one(
            {"_id": LEASE_ID, "taken_epoch": {"$lte": now - interval}}, {"$set": lease}
        )
        if taken.modified_count == 1 or self._lease_stored:
            self._lease_stored = True
            return taken.modified_count == 1
        try:  # no lease yet: the first to write it has the turn
            await self.leases.insert_one({"_id": LEASE_ID, **lease})
        except DuplicateKeyError:  # another replica's, unexpired (or just written)
            self._lease_stored = True
            return False
        self._lease_stored = True
        return True

    async def until_next_turn(self, interval: float) -> float:
        """Seconds until the periodic run's turn is due, as its lease says (0: due, or no lease)."""
        lease = await self.leases.find_one({"_id": LEASE_ID}, {"taken_epoch": 1})
        return 0.0 if lease is None else float(lease["taken_epoch"]) + interval - epoch_now()

    async def run(self, trigger: str = "manual") -> PackRunReport:
        """One pack run over the orders it still has something to do with, oldest first."""
        started = time.perf_counter()
        report = PackRunReport(id=str(uuid.uuid4()), trigger=trigger, started_at=now_iso())
        seen: set[str] = set()
        after = float("-inf")
        while len(seen) < MAX_ORDERS:
            found = await self.views.collection.find(
                {"pack_pending": {"$eq": True}, "created_epoch": {"$gte": after}},
                {"_id": 1, "created_epoch": 1},
                sort=[("created_epoch", 1)],
                limit=BATCH,
            ).to_list()
            fresh = [doc["_id"] for doc in found if doc["_id"] not in seen]
            if not fresh:
                break
            seen.update(fresh)
            views = await self.views.find({"_id": {"$in": fresh}}, limit=len(fresh))
            await self._page(sorted(views, key=lambda v: (v.order.created_at, v.order_id)), report)
            after = max(float(doc["created_epoch"]) for doc in found)
            if len(found) < BATCH:
                break
        report.finished_at = now_iso()
        report.seconds = time.perf_counter() - started
        return report

    async def _page(self, views: list[OrderView], report: PackRunReport) -> None:
        """Decide a page of orders and move what is ready: three lookups by key, a write per move."""
        routings = {r.order_id: r for r in await self.app.routings.find(
            {"_id": {"$in": [v.order_id for v in views]}}, limit=len(views))}  # fmt: skip
        fos = await self.app.planned_fulfillment_orders(list(routings.values()))
        by_order = _live_by_order(routings, fos)
        available = await self._stock_for(by_order)
        locations = await self.app.locations.all()
        decisions = [pack_run.decide(v, by_order.get(v.order_id), available, locations) for v in views]
        report.moved_fulfillment_orders += await self._move([fo for d in decisions for fo in d.to_pack])
        report.decisions.extend(decisions)
        settled = {d.order_id for d in decisions if d.settled}
        await self._settle([v for v in views if v.order_id in settled])

    async def _stock_for(self, by_order: dict[str, list[FulfillmentOrder]]) -> dict[tuple[str, str], int]:
        """The stock view of the skus the pack run may find short (one lookup), nothing otherwise."""
        unsure = [fo for fos in by_order.values() for fo in fos
                  if fo.is_out_of_stock_hold or fo.reservation_status == Reservation.PENDING]  # fmt: skip
        if not unsure:
            return {}
        locations = [location.id for location in await self.app.locations.all()]
        return await self.app.stock.available({sku for fo in unsure for sku in fo.skus}, locations)

    async def _move(self, fo_ids: list[str]) -> int:
        """Move these to packing, each under its rule (one write each, from the document read)."""
        if not fo_ids:
            return 0
        start = partial(packing.start_packing, now=now_iso())
        moved = 0
        for stored in await self.app.fulfillment_orders.find_stored({"_id": {"$in": fo_ids}}):
            if await self.app.fulfillment_orders.apply_to(stored, start) is not None:
                moved += 1
        return moved

    async def _settle(self, views: list[OrderView]) -> None:
        """The pack run is done with these orders until an edit adds lines: cleared in one write,
        each only if no edit came in since it was read (`repack_seq`)."""
        if views:
            await self.views.collection.bulk_write(
                [UpdateOne({"_id": v.order_id, "repack_seq": {"$eq": v.repack_seq}},
                           {"$set": {"pack_pending": False}, "$inc": {"version": 1}}) for v in views],
                ordered=False,
            )  # fmt: skip


def _live_by_order(
    routings: dict[str, RoutingRecord], fos: dict[str, FulfillmentOrder]
) -> dict[str, list[FulfillmentOrder]]:
    """Each routed order's live fulfillment orders (those its plan has not replaced); an order
    whose plan is not all created yet, or is being re-routed (a fulfillment order gave way and its
    replacements are not planned yet: `reroute_pending`), is left out: not routed yet, as far as
    packing goes, rather than settled as having nothing to pack."""
    live: dict[str, list[FulfillmentOrder]] = {}
    for order_id, routing in routings.items():
        ids = [entry.fulfillment_order_id for entry in routing.live_entries]
        if all(fo_id in fos for fo_id in ids) and not any(fos[fo_id].reroute_pending for fo_id in ids):
            live[order_id] = [fos[fo_id] for fo_id in ids]
    return live
