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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from shared.aggregates import Change, Document
from shared.catalog import Hold, HoldReason, OrderSnapshot
from shared.clock import epoch, later

from .fulfillment_orders.model import FulfillmentOrder, Kind
from .routing import LineNeed, RoutingLocation, RoutingPlan, Stock, route

MATERIALISE_GRACE_SECONDS = 60.0
"""How long after a plan is revised the sweep checks that its fulfillment orders exist (and
creates what a crash left out). Longer than any handler takes, so the sweep does not do again
what the handler is doing; a crash is usually repaired sooner, by the event's redelivery."""


@dataclass(frozen=True)
class RoutingContext:
    """What routing reads besides the order: locations, the stock view and the shop settings."""

    locations: list[RoutingLocation]
    stock: Stock
    auto_fulfill: bool = False
    post_purchase_hold_seconds: float = 3600


def fulfillment_order_id(order_id: str, index: int) -> str:
    """Deterministic, so that materialising the same plan twice names the same fulfillment orders."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"order/{order_id}/fulfillment-order/{index}"))


def route_paid_order(
    current: Document | None, order: OrderSnapshot, context: RoutingContext, now: str
) -> Change | None:
    """Plan the fulfillment orders of a paid order: digital lines need no location, the rest
    goes by location priority, what no location has becomes an out-of-stock hold. An order
    paid with a post-purchase offer pending has everything held until the buyer is done."""
    if current is not None:
        return None  # routed already (or cancelled before it was paid)
    routing: Document = {
        "order_id": order.id,
        "order": order.model_dump(mode="json"),
        "cancelled": False,
        "post_purchase_pending": order.post_purchase_pending,
        "upsell_until": later(now, context.post_purchase_hold_seconds) if order.post_purchase_pending else None,
        "auto_fulfill": context.auto_fulfill,
        "entries": [],
        "revision": 0,
        "materialised_revision": -1,
        "created_at": now,
    }
    _plan_order_lines(routing, order, _unplanned(order, []), context, now)
    return _revised(routing, now)


def reroute(current: Document | None, replaced: FulfillmentOrder, context: RoutingContext, now: str) -> Change | None:
    """Plan again what a fulfillment order that gave way still has to ship, without the
    locations it was excluded from; the new entries keep its holds, schedule and deadline."""
    if current is None:
        return None
    routing = _copy(current)
    entry = _entry(routing, replaced.id)
    if entry is None or entry.get("replaced_by") is not None:
        return None  # re-routed already
    if routing["cancelled"]:
        entry["replaced_by"] = []
        return _revised(routing, now)
    lines = [asdict(line) for line in replaced.remaining_lines() if line.requires_shipping]
    holds = [_stored_hold(hold) for hold in replaced.holds if _carried_over(routing, hold)]
    carry = {
        "holds": holds,
        "fulfill_at": replaced.fulfill_at,
        "fulfill_by": replaced.fulfill_by,
        "auto_fulfill": replaced.auto_fulfill,
    }
    excluded = list(replaced.excluded_locations)
    plan = route(_needs(lines), context.locations, context.stock, exclude=excluded)
    before = len(routing["entries"])
    _add_plan(routing, plan, {line["line_item_id"]: line for line in lines}, carry, excluded, now)
    entry["replaced_by"] = [added["fulfillment_order_id"] for added in routing["entries"][before:]]
    return _revised(routing, now)


def post_purchase_completed(
    current: Document | None, order: OrderSnapshot, context: RoutingContext, now: str
) -> Change | None:
    """The buyer is done with the post-purchase offer: nothing new is held for it, and the
    lines the offer added to the order are routed too."""
    if current is None or current["cancelled"]:
        return None
    unplanned = _unplanned(order, current["entries"])
    if not current["post_purchase_pending"] and not any(quantity > 0 for quantity in unplanned.values()):
        return None
    routing = _copy(current)
    routing["post_purchase_pending"] = False
    routing["order"] = order.model_dump(mode="json")
    _plan_order_lines(routing, order, unplanned, context, now)
    return _revised(routing, now)


def cancel(current: Document | None, order: OrderSnapshot, now: str) -> Change | None:
    """The order is cancelled: every planned fulfillment order is to be cancelled, and
    nothing more will be planned."""
    if current is not None and current["cancelled"]:
        return None
    routing = (
        _copy(current)
        if current
        else {
            "order_id": order.id,
            "entries": [],
            "revision": 0,
            "materialised_revision": -1,
            "created_at": now,
            "post_purchase_pending": False,
            "upsell_until": None,
            "auto_fulfill": False,
        }
    )
    routing["order"] = order.model_dump(mode="json")
    routing["cancelled"] = True
    return _revised(routing, now)


def materialised(current: Document | None, revision: int) -> Change | None:
    """Every fulfillment order of plan revision `revision` exists (or is cancelled as planned).
    The service writes it as the update `materialised_update` (no read first)."""
    if current is None or current["revision"] != revision or current["materialised_revision"] == revision:
        return None
    return Change({**current, **materialised_update(revision)})


def materialised_update(revision: int) -> Document:
    """The fields `materialised` sets: nothing is left for the sweep to check."""
    return {"materialised_revision": revision, "materialise_check_at": None}


def live_entries(routing: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Entries whose fulfillment order should exist and is not replaced by a re-route."""
    if routing["cancelled"]:
        return []
    return [entry for entry in routing["entries"] if entry.get("replaced_by") is None]


# --- internals --------------------------------------------------------------------------


def _plan_order_lines(
    routing: Document, order: OrderSnapshot, unplanned: dict[str, int], context: RoutingContext, now: str
) -> None:
    lines: list[dict[str, Any]] = [
        {
            "line_item_id": line.id,
            "sku": line.sku,
            "quantity": unplanned[line.id],
            "requires_shipping": line.requires_shipping,
            "digital_asset_url": line.digital_asset_url,
        }
        for line in order.line_items
        if unplanned.get(line.id, 0) > 0
    ]
    if not lines:
        return
    holds = []
    if routing["post_purchase_pending"]:
        holds.append(
            {
                "reason": HoldReason.POST_PURCHASE_UPSELL.value,
                "held_at": now,
                "release_at": routing["upsell_until"],
                "note": "waiting for the buyer to finish the post-purchase offer",
            }
        )
    digital = [line for line in lines if not line["requires_shipping"]]
    if digital:
        routing["entries"].append(
            _entry_for(
                routing,
                Kind.DIGITAL,
                None,
                digital,
                "digital lines need no location: they are delivered as downloads",
                {"holds": holds, "auto_fulfill": True},
                [],
                now,
            )
        )
    physical = [line for line in lines if line["requires_shipping"]]
    carry = {"holds": holds, "auto_fulfill": routing["auto_fulfill"]}
    plan = route(_needs(physical), context.locations, context.stock)
    _add_plan(routing, plan, {line["line_item_id"]: line for line in physical}, carry, [], now)


def _add_plan(
    routing: Document,
    plan: RoutingPlan,
    lines_by_id: Mapping[str, Mapping[str, Any]],
    carry: Mapping[str, Any],
    excluded: list[str],
    now: str,
) -> None:
    for allocation in plan.allocations:
        lines = [_line(lines_by_id[need.line_item_id], need) for need in allocation.lines]
        routing["entries"].append(
            _entry_for(routing, Kind.SHIPPING, allocation.location, lines, allocation.reason, carry, excluded, now)
        )
    if plan.unfulfillable:
        lines = [_line(lines_by_id[need.line_item_id], need) for need in plan.unfulfillable]
        out_of_stock = {
            "reason": HoldReason.INVENTORY_OUT_OF_STOCK.value,
            "note": plan.unfulfillable_reason,
            "held_at": now,
        }
        held = {**carry, "holds": [out_of_stock, *carry.get("holds", [])]}
        routing["entries"].append(
            _entry_for(routing, Kind.OUT_OF_STOCK, None, lines, plan.unfulfillable_reason, held, [], now)
        )


def _entry_for(
    routing: Document,
    kind: Kind,
    location: RoutingLocation | None,
    lines: list[dict[str, Any]],
    reason: str,
    carry: Mapping[str, Any],
    excluded: list[str],
    now: str,
) -> dict[str, Any]:
    index = len(routing["entries"]) + 1
    return {
        "index": index,
        "fulfillment_order_id": fulfillment_order_id(routing["order_id"], index),
        "kind": kind.value,
        "location_id": location.id if location else None,
        "location_name": location.name if location else None,
        "fulfillment_service": location.fulfillment_service if location else None,
        "lines": lines,
        "reason": reason,
        "holds": [dict(hold) for hold in carry.get("holds", [])],
        "fulfill_at": carry.get("fulfill_at"),
        "fulfill_by": carry.get("fulfill_by"),
        "auto_fulfill": bool(carry.get("auto_fulfill")),
        "excluded_locations": list(excluded) if location else [],
        "replaced_by": None,
        "planned_at": now,
    }


def _carried_over(routing: Mapping[str, Any], hold: Hold) -> bool:
    """A re-route keeps the merchant's holds; the out-of-stock hold is decided afresh, and a
    post-purchase hold only while the buyer is still in the offer."""
    if hold.reason == HoldReason.INVENTORY_OUT_OF_STOCK:
        return False
    return hold.reason != HoldReason.POST_PURCHASE_UPSELL or bool(routing["post_purchase_pending"])


def _stored_hold(hold: Hold) -> dict[str, Any]:
    """A hold as the plan keeps it: without `release_at` unless the platform releases it by itself."""
    return hold.model_dump(mode="json", exclude_none=True)


def _unplanned(order: OrderSnapshot, entries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Quantity of each order line that no live entry covers yet."""
    planned: dict[str, int] = {}
    for entry in entries:
        if entry.get("replaced_by") is None:
            for line in entry["lines"]:
                planned[line["line_item_id"]] = planned.get(line["line_item_id"], 0) + line["quantity"]
    return {line.id: line.quantity - planned.get(line.id, 0) for line in order.line_items}


def _needs(lines: Iterable[Mapping[str, Any]]) -> list[LineNeed]:
    return [LineNeed(line["line_item_id"], line["sku"], line["quantity"]) for line in lines]


def _line(line: Mapping[str, Any], need: LineNeed) -> dict[str, Any]:
    return {
        "line_item_id": line["line_item_id"],
        "sku": line["sku"],
        "quantity": need.quantity,
        "requires_shipping": line["requires_shipping"],
        "digital_asset_url": line.get("digital_asset_url"),
    }


def _entry(routing: Document, fulfillment_order_id: str) -> dict[str, Any] | None:
    entries: list[dict[str, Any]] = routing["entries"]
    return next((entry for entry in entries if entry["fulfillment_order_id"] == fulfillment_order_id), None)


def _copy(routing: Mapping[str, Any]) -> Document:
    return {**routing, "entries": [dict(entry) for entry in routing["entries"]]}


def _revised(routing: Document, now: str) -> Change:
    """A new revision of the plan: the sweep checks at `materialise_check_at` (epoch seconds, an
    indexed range) that its fulfillment orders exist, unless it is marked materialised before."""
    routing["revision"] = routing.get("revision", 0) + 1
    routing["materialise_check_at"] = epoch(now) + MATERIALISE_GRACE_SECONDS
    routing["updated_at"] = now
    return Change(routing)
