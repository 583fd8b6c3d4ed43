"""The warehouse's printouts (domain.pick_lists): a location's pick list, a fulfillment order's
packing slip, and the mark each printed pick list leaves on its fulfillment orders.

The fulfillment orders in packing at a location are read by the (location_id, status, sort_key)
index, in the listing's order (fulfill-by deadline first); bins come from the stock view, as
inventory last announced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.fulfillment.domain import pick_lists
from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder, InvalidRequest, Status
from services.fulfillment.domain.pick_lists import PackingSlip, PickList
from shared.clock import now_iso

from .workflows import Fulfillment

MAX_FULFILLMENT_ORDERS = 250
"""Fulfillment orders one pick list takes (a cart's round; as many as a bulk job)."""
FIELD_IDS = "fulfillment_order_ids"


class UnknownLocation(LookupError):
    """No location of this id is known (404)."""


@dataclass(frozen=True)
class Printout:
    """A pick list and the fulfillment orders on it (what `mark_printed` marks)."""

    pick_list: PickList
    fulfillment_orders: tuple[FulfillmentOrder, ...]


async def pick_list(app: Fulfillment, location_id: str, chosen: Sequence[str] | None = None) -> Printout:
    """The location's pick list: its fulfillment orders in packing, or the `chosen` ones (each
    must be at the location with something to pick: InvalidRequest naming the field otherwise)."""
    location = await app.locations.get(location_id)
    if location is None:
        raise UnknownLocation(f"location {location_id!r} does not exist")
    more = False
    if chosen is None:
        found = await app.fulfillment_orders.find(
            {"location_id": {"$eq": location_id}, "status": {"$eq": Status.IN_PROGRESS.value}},
            sort=[("sort_key", 1)],
            limit=MAX_FULFILLMENT_ORDERS + 1,
        )
        more = len(found) > MAX_FULFILLMENT_ORDERS
        fos = [fo for fo in found[:MAX_FULFILLMENT_ORDERS] if pick_lists.in_packing(fo)]
    else:
        fos = await _chosen(app, location_id, chosen)
    bins = await app.stock.bins(location_id, {line.sku for fo in fos for line in fo.line_items})
    return Printout(pick_lists.pick_list(location_id, location.name, fos, bins, now_iso(), more), tuple(fos))


async def _chosen(app: Fulfillment, location_id: str, ids: Sequence[str]) -> list[FulfillmentOrder]:
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > MAX_FULFILLMENT_ORDERS:
        raise InvalidRequest(FIELD_IDS, f"at most {MAX_FULFILLMENT_ORDERS} fulfillment orders a pick list")
    found = {fo.id: fo for fo in await app.fulfillment_orders.find({"_id": {"$in": wanted}}, limit=len(wanted))}
    unknown = [fo_id for fo_id in wanted if fo_id not in found]
    if unknown:
        raise InvalidRequest(FIELD_IDS, f"unknown fulfillment order {', '.join(unknown)}")
    for fo_id in wanted:
        refused = pick_lists.why_not_pickable(found[fo_id], location_id)
        if refused:
            raise InvalidRequest(FIELD_IDS, refused)
    return [found[fo_id] for fo_id in wanted]


async def mark_printed(app: Fulfillment, printout: Printout) -> None:
    """Each fulfillment order on the printed list records that it was printed (now)."""
    now = now_iso()
    for fo in printout.fulfillment_orders:
        await app.act(fo.id, lambda current: pick_lists.record_pick_list_printed(current, now))


async def packing_slip(app: Fulfillment, fo_id: str) -> PackingSlip:
    fo = await app.fulfillment_orders.get(fo_id)
    if fo is None:
        raise app.unknown(fo_id)
    bins = await app.stock.bins(fo.location_id, fo.skus) if fo.location_id else {}
    return pick_lists.packing_slip(fo, bins, now_iso())
