"""The sweep pass, like a warehouse pack run (services/fulfillment/sweep.py runs it every
`sweep_interval_seconds`): open what is due, release expired post-purchase holds, retry
out-of-stock holds, and finish anything a crash left half done. Every transition is re-checked by
its rule under optimistic concurrency, so replicas never do one twice."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from services.fulfillment.domain.fulfillment_orders import holds, lifecycle
from shared.clock import epoch, now_iso

from .workflows import BATCH, Fulfillment

MAX_PAGES = 100
"""Pages of plans one sweep pass confirms at most (25,000 orders)."""


@dataclass
class SweepReport:
    opened: int = 0
    released: int = 0
    rerouted: int = 0
    repaired: int = 0

    def total(self) -> int:
        return self.opened + self.released + self.rerouted + self.repaired


async def sweep_pass(app: Fulfillment) -> SweepReport:
    """One pass: what it did, by kind."""
    report = SweepReport()
    now = now_iso()
    due = {"$lte": epoch(now)}
    open_due = partial(lifecycle.open_scheduled, now=now, due_only=True)
    for fo in await app.fulfillment_orders.find({"opens_at_epoch": due}, limit=BATCH):
        if await app.apply(fo.id, open_due):
            report.opened += 1
    release_expired = partial(holds.release_post_purchase_hold, now=now, expired_only=True)
    for fo in await app.fulfillment_orders.find({"upsell_release_epoch": due}, limit=BATCH):
        if await app.apply(fo.id, release_expired):
            report.released += 1
    report.rerouted = await app.retry_out_of_stock()
    for fo in await app.fulfillment_orders.find({"reroute_pending": {"$eq": True}}, limit=BATCH):
        await app.finish_reroute(fo)
        report.repaired += 1
    report.repaired += await _confirm_plans(app, epoch(now))
    return report


async def _confirm_plans(app: Fulfillment, now: float) -> int:
    """Plans due to be checked: create what a crash left out, then mark them done, a page of
    them per write (a plan revised meanwhile has a later check time, so it is left for its
    own). Every plan comes due once, so a pass goes on until none is left, however many orders
    came in since the last. How many needed a repair."""
    repaired = 0
    for _ in range(MAX_PAGES):
        due = await app.routings.find({"materialise_check_at": {"$lte": now}}, limit=BATCH)
        if not due:
            break
        existing = await app.planned_fulfillment_orders(due)
        for routing in due:
            if await app.materialise_plan(routing, existing):
                repaired += 1
        await app.routings.collection.update_many(
            {"_id": {"$in": [routing.order_id for routing in due]}, "materialise_check_at": {"$lte": now}},
            {"$set": {"materialise_check_at": None}, "$inc": {"version": 1}},
        )
        if len(due) < BATCH:
            break
    return repaired
