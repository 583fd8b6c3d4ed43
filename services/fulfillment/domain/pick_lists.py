"""Pick lists and packing slips: what the warehouse prints for the fulfillment orders it packs.

A pick list is one location's: the lines still to ship of its fulfillment orders in packing (or a
chosen set), grouped by sku and walked in bin order (a bin per sku and location, set in inventory;
skus without a bin come last), each with its quantity and the orders its units go to. A packing
slip is one fulfillment order's: what goes in its parcel and where the parcel goes. Printing a pick
list records when on each fulfillment order it holds (`record_pick_list_printed`), so that the next
list shows which were printed before. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from services.fulfillment.domain.fulfillment_orders.model import (
    TERMINAL,
    FulfillmentOrder,
    Kind,
    Status,
    Transition,
    TransitionRefused,
)
from shared.catalog import Address, OrderSnapshot

PICKABLE = (Status.OPEN, Status.IN_PROGRESS)
"""Statuses a chosen fulfillment order may be picked in (a hold, a schedule or the end stop it)."""


def in_packing(fo: FulfillmentOrder) -> bool:
    """The warehouse status *packing*: IN_PROGRESS at a location the merchant runs (no
    fulfillment service), with something left to ship."""
    return (
        fo.status == Status.IN_PROGRESS
        and fo.location_id is not None
        and not fo.fulfillment_service
        and bool(fo.remaining_lines())
    )


def why_not_pickable(fo: FulfillmentOrder, location_id: str) -> str | None:
    """Why a chosen fulfillment order cannot go on this location's pick list; None when it can."""
    if fo.location_id != location_id:
        return f"fulfillment order {fo.id} ships from {fo.location_id or 'no location'}, not {location_id}"
    if fo.status not in PICKABLE:
        return f"fulfillment order {fo.id} is {fo.status.value}: only OPEN or IN_PROGRESS ones are picked"
    if not fo.remaining_lines():
        return f"fulfillment order {fo.id} has nothing left to ship"
    return None


def order_reference(order: OrderSnapshot) -> str:
    """What a person reads out: the shop-wide order number (#1001), else the order id's first
    eight characters, as the emails show it."""
    if order.number is not None:
        return f"#{order.number}"
    return "#" + order.id.replace("-", "")[:8].upper()


_PARTS = re.compile(r"(\d+)")


def bin_order(bin_code: str | None) -> tuple[int, tuple[tuple[int, int, str], ...]]:
    """The order a picker walks the bins in: natural order (A-2 before A-10), case aside; skus
    without a bin last."""
    if not bin_code:
        return (1, ())
    parts = _PARTS.split(bin_code.casefold())
    return (0, tuple((1, int(part), "") if part.isdigit() else (0, 0, part) for part in parts if part))


@dataclass(frozen=True)
class Destination:
    """Units of a pick line that go to one fulfillment order (and so one order)."""

    fulfillment_order_id: str
    order_ref: str
    quantity: int


@dataclass(frozen=True)
class PickLine:
    """One sku to take from its bin: how many in all, and for which orders."""

    sku: str
    title: str
    bin: str | None
    quantity: int
    destinations: tuple[Destination, ...]


@dataclass(frozen=True)
class Picked:
    """A fulfillment order on the pick list, and whether a pick list with it was printed before."""

    fulfillment_order_id: str
    order_id: str
    order_ref: str
    customer_name: str
    units: int
    printed_before: str | None


@dataclass(frozen=True)
class PickList:
    location_id: str
    location_name: str
    generated_at: str
    lines: tuple[PickLine, ...]
    fulfillment_orders: tuple[Picked, ...]
    more: bool = False
    """More fulfillment orders are in packing than one list takes: print again once these are done."""

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


def titles(fo: FulfillmentOrder) -> dict[str, str]:
    """Each line's title, from the order (by line item id)."""
    return {item.id: item.title for item in fo.order.line_items}


def pick_list(
    location_id: str,
    location_name: str,
    fulfillment_orders: Sequence[FulfillmentOrder],
    bins: Mapping[str, str],
    now: str,
    more: bool = False,
) -> PickList:
    """The pick list of these fulfillment orders (in the order given): what remains of their lines,
    grouped by sku, in bin order."""
    quantities: dict[str, int] = {}
    names: dict[str, str] = {}
    destinations: dict[str, list[Destination]] = {}
    picked: list[Picked] = []
    for fo in fulfillment_orders:
        reference, title_of = order_reference(fo.order), titles(fo)
        remaining = fo.remaining_lines()
        for line in remaining:
            quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
            names.setdefault(line.sku, title_of.get(line.line_item_id, ""))
            _add(destinations.setdefault(line.sku, []), Destination(fo.id, reference, line.quantity))
        units = sum(line.quantity for line in remaining)
        picked.append(Picked(fo.id, fo.order_id, reference, fo.order.customer.name, units, fo.pick_list_printed_at))
    lines = [
        PickLine(sku, names[sku], bins.get(sku), quantity, tuple(destinations[sku]))
        for sku, quantity in quantities.items()
    ]
    lines.sort(key=lambda line: (bin_order(line.bin), line.sku))
    return PickList(location_id, location_name, now, tuple(lines), tuple(picked), more)


def _add(destinations: list[Destination], destination: Destination) -> None:
    """Two lines of one fulfillment order with the same sku go to it as one destination."""
    for index, known in enumerate(destinations):
        if known.fulfillment_order_id == destination.fulfillment_order_id:
            destinations[index] = replace(known, quantity=known.quantity + destination.quantity)
            return
    destinations.append(destination)


def record_pick_list_printed(fo: FulfillmentOrder, now: str) -> Transition:
    """A pick list with this fulfillment order was printed now: the next one says so."""
    return Transition(replace(fo, pick_list_printed_at=now, updated_at=now))


# --- packing slips ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SlipLine:
    sku: str
    title: str
    quantity: int
    bin: str | None


@dataclass(frozen=True)
class PackingSlip:
    fulfillment_order_id: str
    order_id: str
    order_ref: str
    ordered_at: str
    customer_name: str
    customer_email: str
    ship_to: tuple[str, ...]
    location_name: str
    lines: tuple[SlipLine, ...]
    generated_at: str

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


def packing_slip(fo: FulfillmentOrder, bins: Mapping[str, str], now: str) -> PackingSlip:
    """What goes in the fulfillment order's parcel (what remains to ship) and where it goes.
    Refused for one with nothing to pack: digital, cancelled, or shipped whole."""
    if fo.kind != Kind.SHIPPING or fo.location_id is None:
        raise TransitionRefused(f"fulfillment order {fo.id} ships nothing from a location: no packing slip")
    if fo.status in TERMINAL or not fo.remaining_lines():
        raise TransitionRefused(f"fulfillment order {fo.id} is {fo.status.value}: nothing is left to pack")
    title_of = titles(fo)
    lines = tuple(
        SlipLine(line.sku, title_of.get(line.line_item_id, ""), line.quantity, bins.get(line.sku))
        for line in fo.remaining_lines()
    )
    address = fo.order.shipping_address or Address()
    return PackingSlip(
        fo.id, fo.order_id, order_reference(fo.order), fo.order.created_at, fo.order.customer.name,
        fo.order.customer.email, address.lines(), fo.where, lines, now,
    )  # fmt: skip
