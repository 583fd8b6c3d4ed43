"""The pack run's rules, pure: what fulfillment knows of an order (`OrderView`, kept from the
orders service's events) and, for one order with its fulfillment orders, whether the pack run
moves it to packing or why not, step by step (`decide`), as the warehouse guide's manual run
shows where the script stops and why.

An order moves to packing when it is not a draft, is paid, is not marked waiting, none of its
fulfillment orders at a merchant-managed location is held or scheduled, and every one of its
shipping lines is in stock and reserved at its location; then each such fulfillment order goes
to packing (`fulfillment_orders.packing.start_packing`). Fulfillment orders at a fulfillment
service's location, digital ones and those already shipped are not the warehouse's to pack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from shared.aggregates import Change
from shared.catalog import FinancialStatus, HoldReason, OrderSnapshot

from .fulfillment_orders.model import TERMINAL, FulfillmentOrder, Kind, Reservation, Status
from .fulfillment_orders.packing import ready_to_pack
from .routing import RoutingLocation

PAID = (FinancialStatus.PAID, FinancialStatus.PARTIALLY_REFUNDED)


@dataclass(frozen=True, kw_only=True)
class OrderView:
    """An order as the pack run sees it: its latest snapshot, whether it is cancelled, and whether
    the pack run still has something to do with it (`pack_pending`, cleared once it moved it all
    to packing, set again when an edit or a post-purchase offer adds lines). `repack_seq` counts
    those settings, so that a pack run clears only the state it saw."""

    order_id: str
    order: OrderSnapshot
    cancelled: bool = False
    pack_pending: bool = True
    repack_seq: int = 0
    as_of: str = ""


def order_seen(
    current: OrderView | None, order: OrderSnapshot, as_of: str, *, repack: bool = False, cancelled: bool = False
) -> Change[OrderView] | None:
    """An orders event's snapshot: kept unless a newer one is (events of one order arrive in
    order; this guards a redelivery). `repack`: lines were added or changed, the pack run looks
    at the order again; `cancelled`: it never will."""
    if current is None:
        return Change(OrderView(order_id=order.id, order=order, cancelled=cancelled, pack_pending=not cancelled,
                                as_of=as_of))  # fmt: skip
    newer = as_of >= current.as_of
    view = replace(
        current,
        order=order if newer else current.order,
        as_of=max(as_of, current.as_of),
        cancelled=current.cancelled or cancelled,
    )
    if view.cancelled:
        view = replace(view, pack_pending=False)
    elif repack:
        view = replace(view, pack_pending=True, repack_seq=current.repack_seq + 1)
    return None if view == current else Change(view)


def display_number(order: OrderSnapshot) -> str:
    """How a person reads the order out: "#1001", or its id before it had a number."""
    return f"#{order.number}" if order.number is not None else order.id


class Outcome(StrEnum):
    MOVED = "moved"
    DRAFT = "draft"
    NOT_PAID = "not_paid"
    WAITING = "waiting"
    NOT_ROUTED = "not_routed"
    ON_HOLD = "on_hold"
    SCHEDULED = "scheduled"
    SHORT = "short"
    NOT_RESERVED = "not_reserved"
    ALREADY_PACKING = "already_packing"
    NOTHING_TO_PACK = "nothing_to_pack"


SETTLED = (Outcome.MOVED, Outcome.ALREADY_PACKING, Outcome.NOTHING_TO_PACK)
"""Outcomes after which the pack run has nothing more to do with the order (until it is edited)."""


@dataclass(frozen=True)
class Step:
    """One check of the pack run on an order: passed or not, and what it found."""

    check: str
    ok: bool
    message: str


@dataclass(frozen=True)
class PackDecision:
    """The pack run's verdict on one order: the checks up to where it stopped, and the
    fulfillment orders it moves to packing (when the outcome is `moved`)."""

    order_id: str
    number: str
    outcome: Outcome
    steps: tuple[Step, ...]
    to_pack: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return self.steps[-1].message if self.steps else ""

    @property
    def settled(self) -> bool:
        return self.outcome in SETTLED


def decide(
    view: OrderView,
    fos: Sequence[FulfillmentOrder] | None,
    available: Mapping[tuple[str, str], int],
    locations: Sequence[RoutingLocation],
) -> PackDecision:
    """Whether the order moves to packing, or where the checks stop and why. `fos`: the order's
    live fulfillment orders (None: not routed yet); `available`: the stock view, for the lines
    that are short (by location and sku); `locations`: where an unrouted line would go first."""
    order = view.order
    steps: list[Step] = []

    def stop(outcome: Outcome, check: str, message: str) -> PackDecision:
        return PackDecision(order.id, display_number(order), outcome, (*steps, Step(check, False, message)))

    if order.is_draft:
        return stop(Outcome.DRAFT, "draft", "a draft (a checkout started, no customer details yet): never packed")
    steps.append(Step("draft", True, "not a draft"))
    if order.financial_status not in PAID:
        return stop(Outcome.NOT_PAID, "paid", f"not paid (financial status {order.financial_status})")
    steps.append(Step("paid", True, "paid"))
    if order.waiting:
        return stop(
            Outcome.WAITING, "waiting", "marked waiting by the merchant: kept out of the pack run until cleared"
        )
    steps.append(Step("waiting", True, "not waiting"))
    if fos is None:
        return stop(Outcome.NOT_ROUTED, "routed", "paid, but not routed to a location yet")
    ours = [fo for fo in fos if _the_warehouses(fo)]
    held = [fo for fo in ours if fo.status == Status.ON_HOLD and not fo.is_out_of_stock_hold]
    if held:
        return stop(Outcome.ON_HOLD, "hold", "on hold: " + "; ".join(_holds(fo) for fo in held))
    steps.append(Step("hold", True, "not on hold"))
    scheduled = [fo for fo in ours if fo.status == Status.SCHEDULED]
    if scheduled:
        return stop(Outcome.SCHEDULED, "scheduled", f"scheduled: opens at {scheduled[0].fulfill_at}")
    short = [why for fo in ours for why in _shortages(fo, available, locations)]
    if short:
        return stop(Outcome.SHORT, "stock", "; ".join(short))
    pending = [fo for fo in ours if fo.reservation_status == Reservation.PENDING]
    if pending:
        lines = ", ".join(f"{line.sku} at {fo.where}" for fo in pending for line in fo.remaining_lines())
        return stop(Outcome.NOT_RESERVED, "stock", f"in stock, not reserved yet (inventory has not confirmed): {lines}")
    steps.append(Step("stock", True, "every shipping line in stock and reserved at its location"))
    to_pack = tuple(fo.id for fo in ours if ready_to_pack(fo))
    if to_pack:
        where = ", ".join(sorted({fo.where for fo in ours if fo.id in to_pack}))
        steps.append(Step("pack", True, f"moved to packing at {where}"))
        return PackDecision(order.id, display_number(order), Outcome.MOVED, tuple(steps), to_pack)
    if any(fo.status == Status.IN_PROGRESS for fo in ours):
        return stop(Outcome.ALREADY_PACKING, "pack", "already in packing")
    return stop(Outcome.NOTHING_TO_PACK, "pack", "nothing for the warehouse to pack (shipped, digital, or at a "
                                                 "fulfillment service)")  # fmt: skip


def _the_warehouses(fo: FulfillmentOrder) -> bool:
    """Packed here: a shipping fulfillment order still to ship, at a merchant-managed location or
    waiting for stock to be found for it (an out-of-stock hold has no location yet)."""
    if fo.status in TERMINAL or fo.kind == Kind.DIGITAL:
        return False
    return fo.merchant_managed or fo.is_out_of_stock_hold


def _holds(fo: FulfillmentOrder) -> str:
    reasons = ", ".join(f"{hold.reason}" + (f" ({hold.note})" if hold.note else "") for hold in fo.holds
                        if hold.reason != HoldReason.INVENTORY_OUT_OF_STOCK)  # fmt: skip
    return f"{reasons} at {fo.where}"


def _shortages(
    fo: FulfillmentOrder, available: Mapping[tuple[str, str], int], locations: Sequence[RoutingLocation]
) -> list[str]:
    """'line X short at location Y' for each line of `fo` that its location does not have; for an
    out-of-stock hold (no location yet), Y is the location closest to having it (the most
    available, then the first by priority)."""
    if fo.is_out_of_stock_hold:
        ours = [loc for loc in locations if loc.active and not loc.fulfillment_service]
        if not ours:
            return [f"line {line.sku} short: no location is active" for line in fo.remaining_lines()]
        shortages = []
        for line in fo.remaining_lines():
            best = min(ours, key=lambda loc: (-available.get((loc.id, line.sku), 0), loc.rank))
            shortages.append(_short(line.sku, best.id, line.quantity, available.get((best.id, line.sku), 0)))
        return shortages
    if fo.reservation_status != Reservation.PENDING or fo.location_id is None:
        return []
    return [
        _short(line.sku, fo.location_id, line.quantity, have)
        for line in fo.remaining_lines()
        if (have := available.get((fo.location_id, line.sku), 0)) < line.quantity
    ]


def _short(sku: str, location_id: str, needed: int, have: int) -> str:
    return f"line {sku} short at location {location_id}: {needed} needed, {max(have, 0)} available"
