"""Packing: the pack run moves a fulfillment order whose stock is reserved at a merchant-managed
location to packing (IN_PROGRESS there; its warehouse status is `packing`), and the order's
snapshot is kept up to date on the fulfillment orders an edit did not otherwise touch.

A pure rule like the others: `start_packing` returns None when the fulfillment order is no
longer ready (another replica's pack run moved it first, a hold came in meanwhile), so that the
store's optimistic concurrency makes a second move a no-op, never a second event.
"""

from __future__ import annotations

from dataclasses import replace

from shared.catalog import OrderSnapshot

from .announcements import fo_event
from .lifecycle import progressed
from .model import TERMINAL, FulfillmentOrder, Reservation, Status, Transition


def ready_to_pack(fo: FulfillmentOrder) -> bool:
    """OPEN at a merchant-managed location, its stock reserved there, nothing shipped or held."""
    return (
        fo.status == Status.OPEN
        and fo.merchant_managed
        and fo.reservation_status == Reservation.RESERVED
        and not fo.holds
        and fo.packed_at is None
    )


def start_packing(fo: FulfillmentOrder, now: str) -> Transition | None:
    """The pack run takes it: IN_PROGRESS at its location until shipped (a partial shipment keeps
    it there). None when it is not ready (any more)."""
    if not ready_to_pack(fo):
        return None
    fo = replace(fo, status=Status.IN_PROGRESS, packed_at=now, updated_at=now)
    return Transition(fo, (fo_event("fulfillment_order.packing_started", fo, f"moved to packing at {fo.where}"),))


def order_updated(fo: FulfillmentOrder, order: OrderSnapshot, now: str) -> Transition | None:
    """The order changed (an edit's new shipping address, say): the fulfillment order carries the
    new snapshot (packing slips print it). Nothing to announce: order.edited did. A draft given
    its customer: what is automatic ships now (lifecycle.progressed)."""
    if fo.status in TERMINAL or fo.order == order:
        return None
    fo = replace(fo, order=order, updated_at=now)
    return Transition(fo).then(progressed(fo, now))
