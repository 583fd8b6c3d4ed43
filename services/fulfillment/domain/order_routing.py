"""The routing record of one order: the plan of its fulfillment orders, kept whole.

Routing turns one event into several fulfillment orders, but only single-document writes
are atomic. So the plan is written first, here, in one document per order: each entry is
one fulfillment order with a deterministic id and everything needed to create it. The
fulfillment orders are then created from the stored plan, each only if missing: a crash or
a redelivery re-creates from the plan, never re-plans, so nothing is lost or doubled even
when stock changed in between. Re-routes (a failed reservation, stock arriving for an
out-of-stock hold) mark the replaced entry and append new ones the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from shared.aggregates import Change
from shared.catalog import Hold, HoldReason, LineItem, OrderSnapshot, ServiceWorkflow
from shared.clock import epoch, later

from .fulfillment_orders.model import TERMINAL, FulfillmentOrder, Kind, Line, PlanEntry, Reservation
from .routing import LineNeed, RoutingLocation, RoutingPlan, Stock, route

MATERIALISE_GRACE_SECONDS = 60.0
"""How long after a plan is revised the sweep checks that its fulfillment orders exist (and
creates what a crash left out). Longer than any handler takes, so the sweep does not do again
what the handler is doing; a crash is usually repaired sooner, by the event's redelivery."""


@dataclass(frozen=True, kw_only=True)
class RoutingRecord:
    """The plan of one order's fulfillment orders (one entry each), stored under the order's id."""

    order_id: str
    order: OrderSnapshot
    cancelled: bool = False
    post_purchase_pending: bool = False
    upsell_until: str | None = None
    """Until when a post-purchase hold holds (while the buyer is in the offer)."""
    auto_fulfill: bool = False
    entries: tuple[PlanEntry, ...] = ()
    revision: int = 0
    materialised_revision: int = -1
    """The revision whose fulfillment orders all exist; -1: none yet."""
    materialise_check_at: float | None = None
    """When the sweep checks that this revision's fulfillment orders exist (epoch seconds)."""
    created_at: str
    updated_at: str | None = None

    @property
    def live_entries(self) -> list[PlanEntry]:
        """Entries whose fulfillment order should exist and is not replaced by a re-route."""
        return [] if self.cancelled else [entry for entry in self.entries if entry.replaced_by is None]

    def entry(self, fulfillment_order_id: str) -> PlanEntry | None:
        return next((entry for entry in self.entries if entry.fulfillment_order_id == fulfillment_order_id), None)


RoutingChange = Change[RoutingRecord]


@dataclass(frozen=True)
class RoutingContext:
    """What routing reads besides the order: locations, the stock view and the shop settings."""

    locations: list[RoutingLocation]
    stock: Stock
    auto_fulfill: bool = False
    post_purchase_hold_seconds: float = 3600


@dataclass(frozen=True)
class Carried:
    """What new entries carry over: from the shop (holds, automatic) or from the fulfillment order
    they replace (its holds, schedule and deadline)."""

    holds: tuple[Hold, ...] = ()
    auto_fulfill: bool = False
    fulfill_at: str | None = None
    fulfill_by: str | None = None
    excluded: tuple[str, ...] = field(default=())


def fulfillment_order_id(order_id: str, index: int) -> str:
    """Deterministic, so that materialising the same plan twice names the same fulfillment orders."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"order/{order_id}/fulfillment-order/{index}"))


def route_paid_order(
    current: RoutingRecord | None, order: OrderSnapshot, context: RoutingContext, now: str
) -> RoutingChange | None:
    """Plan the fulfillment orders of a paid order: digital lines need no location, the rest
    goes by location priority, what no location has becomes an out-of-stock hold. An order
    paid with a post-purchase offer pending has everything held until the buyer is done."""
    if current is not None:
        return None  # routed already (or cancelled before it was paid)
    routing = RoutingRecord(
        order_id=order.id,
        order=order,
        post_purchase_pending=order.post_purchase_pending,
        upsell_until=later(now, context.post_purchase_hold_seconds) if order.post_purchase_pending else None,
        auto_fulfill=context.auto_fulfill,
        created_at=now,
    )
    return _revised(_plan_order_lines(routing, order, _unplanned(order, ()), context, now), now)


def reroute(
    current: RoutingRecord | None, replaced: FulfillmentOrder, context: RoutingContext, now: str
) -> RoutingChange | None:
    """Plan again what a fulfillment order that gave way still has to ship, without the
    locations it was excluded from; the new entries keep its holds, schedule and deadline."""
    entry = current.entry(replaced.id) if current else None
    if current is None or entry is None or entry.replaced_by is not None:
        return None  # re-routed already
    if current.cancelled:
        return _revised(_replaced(current, entry, ()), now)
    lines = [line for line in replaced.remaining_lines() if line.requires_shipping]
    carry = Carried(
        holds=tuple(hold for hold in replaced.holds if _carried_over(current, hold)),
        auto_fulfill=replaced.auto_fulfill,
        fulfill_at=replaced.fulfill_at,
        fulfill_by=replaced.fulfill_by,
        excluded=replaced.excluded_locations,
    )
    plan = route(_needs(lines), context.locations, context.stock, exclude=carry.excluded)
    added = _add_plan(current, plan, lines, carry, now)
    routing = replace(current, entries=(*current.entries, *added))
    return _revised(_replaced(routing, entry, tuple(new.fulfillment_order_id for new in added)), now)


def post_purchase_completed(
    current: RoutingRecord | None, order: OrderSnapshot, context: RoutingContext, now: str
) -> RoutingChange | None:
    """The buyer is done with the post-purchase offer: nothing new is held for it, and the
    lines the offer added to the order are routed too."""
    if current is None or current.cancelled:
        return None
    unplanned = _unplanned(order, current.entries)
    if not current.post_purchase_pending and not any(quantity > 0 for quantity in unplanned.values()):
        return None
    routing = replace(current, post_purchase_pending=False, order=order)
    return _revised(_plan_order_lines(routing, order, unplanned, context, now), now)


def edit(
    current: RoutingRecord | None,
    order: OrderSnapshot,
    fos: Mapping[str, FulfillmentOrder],
    context: RoutingContext,
    now: str,
) -> RoutingChange | None:
    """The merchant edited the order (`order`, the whole new snapshot): what changed is planned
    again, what did not stays. A fulfillment order holding more of a line than the order now
    wants (a quantity down, a line removed, a line whose sku changed) gives way, newest first:
    its entry is replaced and what it still had to ship that the order still wants is planned
    anew, with the stock it held counted back at its location (inventory releases it when the
    fulfillment order is cancelled) and its merchant holds carried over; what an order line
    wants beyond what the plan covers (a quantity up, a new line) is planned as new entries.
    What was shipped stays counted. `fos`: the plan's fulfillment orders as they are now."""
    if current is None or current.cancelled:
        return None
    wanted = {line.id: line for line in order.line_items}
    live = current.live_entries
    affected: list[PlanEntry] = []
    for entry in reversed(live):
        fo = fos.get(entry.fulfillment_order_id)
        if fo is None or fo.status in TERMINAL:
            continue  # not created yet (the plan stands as it is) or done: it cannot give way
        excess = _excess(live, affected, fos, wanted)
        if any(excess.get(line.line_item_id, 0) > 0 or _changed_sku(line, wanted) for line in entry.lines):
            affected.append(entry)
    routing = replace(current, order=order)
    unplanned = _still_wanted(live, affected, fos, wanted)
    if not affected and not any(quantity > 0 for quantity in unplanned.values()):
        return None if current.order == order else Change(replace(routing, updated_at=now))
    credited = dict(context.stock)
    carried: list[Hold] = []
    for entry in affected:
        fo = fos[entry.fulfillment_order_id]
        carried += [hold for hold in fo.holds if _carried_over(current, hold) and hold not in carried]
        if fo.location_id is not None and fo.reservation_status == Reservation.RESERVED:
            for line in fo.remaining_lines():
                key = (fo.location_id, line.sku)
                credited[key] = credited.get(key, 0) + line.quantity
    before = len(routing.entries)
    routing = _plan_order_lines(routing, order, unplanned, replace(context, stock=credited), now, tuple(carried))
    added = tuple(entry.fulfillment_order_id for entry in routing.entries[before:])
    for entry in affected:
        routing = _replaced(
            routing, next(e for e in routing.entries if e.fulfillment_order_id == entry.fulfillment_order_id), added
        )
    return _revised(routing, now)


def _covered(
    live: Sequence[PlanEntry], affected: Sequence[PlanEntry], fos: Mapping[str, FulfillmentOrder]
) -> dict[str, int]:
    """Quantity of each line the plan covers once `affected` give way (their shipped part stays)."""
    covered: dict[str, int] = {}
    for entry in live:
        fo = fos.get(entry.fulfillment_order_id)
        gives_way = entry in affected
        for line in fo.line_items if fo is not None else entry.lines:
            quantity = line.fulfilled_quantity if gives_way else line.quantity
            covered[line.line_item_id] = covered.get(line.line_item_id, 0) + quantity
    return covered


def _excess(
    live: Sequence[PlanEntry], affected: Sequence[PlanEntry], fos: Mapping[str, FulfillmentOrder],
    wanted: Mapping[str, LineItem],
) -> dict[str, int]:  # fmt: skip
    covered = _covered(live, affected, fos)
    return {line_id: got - (wanted[line_id].quantity if line_id in wanted else 0) for line_id, got in covered.items()}


def _still_wanted(
    live: Sequence[PlanEntry], affected: Sequence[PlanEntry], fos: Mapping[str, FulfillmentOrder],
    wanted: Mapping[str, LineItem],
) -> dict[str, int]:  # fmt: skip
    covered = _covered(live, affected, fos)
    return {line_id: max(0, line.quantity - covered.get(line_id, 0)) for line_id, line in wanted.items()}


def _changed_sku(line: Line, wanted: Mapping[str, LineItem]) -> bool:
    """The order line is gone, or now names another sku: this line cannot stay as it is."""
    return line.line_item_id not in wanted or wanted[line.line_item_id].sku != line.sku


def cancel(current: RoutingRecord | None, order: OrderSnapshot, now: str) -> RoutingChange | None:
    """The order is cancelled: every planned fulfillment order is to be cancelled, and
    nothing more will be planned."""
    if current is not None and current.cancelled:
        return None
    routing = current or RoutingRecord(order_id=order.id, order=order, created_at=now)
    return _revised(replace(routing, order=order, cancelled=True), now)


def materialised(current: RoutingRecord | None, revision: int) -> RoutingChange | None:
    """Every fulfillment order of plan revision `revision` exists (or is cancelled as planned).
    The service writes it as one conditional update (see store.materialised_update), no read first."""
    if current is None or current.revision != revision or current.materialised_revision == revision:
        return None
    return Change(replace(current, materialised_revision=revision, materialise_check_at=None))


# --- internals --------------------------------------------------------------------------


def _plan_order_lines(
    routing: RoutingRecord,
    order: OrderSnapshot,
    unplanned: Mapping[str, int],
    context: RoutingContext,
    now: str,
    carried: tuple[Hold, ...] = (),
) -> RoutingRecord:
    lines = [
        Line(line.id, line.sku, unplanned[line.id], requires_shipping=line.requires_shipping,
             digital_asset_url=line.digital_asset_url)
        for line in order.line_items
        if unplanned.get(line.id, 0) > 0
    ]  # fmt: skip
    if not lines:
        return routing
    holds: tuple[Hold, ...] = carried
    if routing.post_purchase_pending:
        note = "waiting for the buyer to finish the post-purchase offer"
        upsell = Hold(reason=HoldReason.POST_PURCHASE_UPSELL, held_at=now, release_at=routing.upsell_until, note=note)
        holds = (upsell, *(hold for hold in carried if hold.reason != HoldReason.POST_PURCHASE_UPSELL))
    entries: list[PlanEntry] = []
    digital = [line for line in lines if not line.requires_shipping]
    if digital:
        why = "digital lines need no location: they are delivered as downloads"
        entries.append(_entry_for(routing, 0, Kind.DIGITAL, None, digital, why, Carried(holds, auto_fulfill=True), now))
    physical = [line for line in lines if line.requires_shipping]
    routing = replace(routing, entries=(*routing.entries, *entries))
    plan = route(_needs(physical), context.locations, context.stock)
    added = _add_plan(routing, plan, physical, Carried(holds, auto_fulfill=routing.auto_fulfill), now)
    return replace(routing, entries=(*routing.entries, *added))


def _add_plan(
    routing: RoutingRecord, plan: RoutingPlan, lines: Sequence[Line], carry: Carried, now: str
) -> list[PlanEntry]:
    """The entries of `plan`, numbered after the routing's."""
    by_id = {line.line_item_id: line for line in lines}
    added: list[PlanEntry] = []
    for allocation in plan.allocations:
        planned = [replace(by_id[need.line_item_id], quantity=need.quantity) for need in allocation.lines]
        added.append(
            _entry_for(routing, len(added), Kind.SHIPPING, allocation.location, planned, allocation.reason, carry, now)
        )
    if plan.unfulfillable:
        planned = [replace(by_id[need.line_item_id], quantity=need.quantity) for need in plan.unfulfillable]
        out_of_stock = Hold(reason=HoldReason.INVENTORY_OUT_OF_STOCK, note=plan.unfulfillable_reason, held_at=now)
        held = replace(carry, holds=(out_of_stock, *carry.holds), excluded=())
        added.append(
            _entry_for(routing, len(added), Kind.OUT_OF_STOCK, None, planned, plan.unfulfillable_reason, held, now)
        )
    return added


def _entry_for(
    routing: RoutingRecord,
    added: int,
    kind: Kind,
    location: RoutingLocation | None,
    lines: Sequence[Line],
    reason: str,
    carry: Carried,
    now: str,
) -> PlanEntry:
    """The entry after the routing's entries and `added` more."""
    index = len(routing.entries) + added + 1
    return PlanEntry(
        index=index,
        fulfillment_order_id=fulfillment_order_id(routing.order_id, index),
        kind=kind,
        location_id=location.id if location else None,
        location_name=location.name if location else None,
        fulfillment_service=location.fulfillment_service if location else None,
        workflow=location.workflow if location else ServiceWorkflow.NEW,
        lines=tuple(lines),
        reason=reason,
        holds=carry.holds,
        fulfill_at=carry.fulfill_at,
        fulfill_by=carry.fulfill_by,
        auto_fulfill=carry.auto_fulfill,
        excluded_locations=carry.excluded if location else (),
        planned_at=now,
    )


def _replaced(routing: RoutingRecord, entry: PlanEntry, replaced_by: tuple[str, ...]) -> RoutingRecord:
    """`entry` marked replaced by these fulfillment orders."""
    marked = replace(entry, replaced_by=replaced_by)
    return replace(routing, entries=tuple(marked if e is entry else e for e in routing.entries))


def _carried_over(routing: RoutingRecord, hold: Hold) -> bool:
    """A re-route keeps the merchant's holds; the out-of-stock hold is decided afresh, and a
    post-purchase hold only while the buyer is still in the offer."""
    if hold.reason == HoldReason.INVENTORY_OUT_OF_STOCK:
        return False
    return hold.reason != HoldReason.POST_PURCHASE_UPSELL or routing.post_purchase_pending


def _unplanned(order: OrderSnapshot, entries: Iterable[PlanEntry]) -> dict[str, int]:
    """Quantity of each order line that no live entry covers yet."""
    planned: dict[str, int] = {}
    for entry in entries:
        if entry.replaced_by is None:
            for line in entry.lines:
                planned[line.line_item_id] = planned.get(line.line_item_id, 0) + line.quantity
    return {line.id: line.quantity - planned.get(line.id, 0) for line in order.line_items}


def _needs(lines: Iterable[Line]) -> list[LineNeed]:
    return [LineNeed(line.line_item_id, line.sku, line.quantity) for line in lines]


def _revised(routing: RoutingRecord, now: str) -> RoutingChange:
    """A new revision of the plan: the sweep checks at `materialise_check_at` (epoch seconds, an
    indexed range) that its fulfillment orders exist, unless it is marked materialised before."""
    return Change(
        replace(
            routing,
            revision=routing.revision + 1,
            materialise_check_at=epoch(now) + MATERIALISE_GRACE_SECONDS,
            updated_at=now,
        )
    )
