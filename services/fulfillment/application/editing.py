"""A merchant's edit of an order (order.edited, with the whole new snapshot): re-route and
re-reserve what changed through the routing's own machinery, keep what did not.

Steps, each idempotent, in the order that makes a crash between two harmless (the sweep's
check of the plan finishes what a crash left): the plan first (domain.order_routing.edit: the
fulfillment orders that give way are marked replaced, the new ones appended), then
`materialise` cancels those that gave way (inventory releases their stock on
fulfillment_order.cancelled) and creates the new ones (inventory reserves on
fulfillment_order.created), then the fulfillment orders the edit did not touch take the new
snapshot (a new shipping address shows on their packing slips).
"""

from __future__ import annotations

from services.fulfillment.domain import order_routing
from services.fulfillment.domain.fulfillment_orders import packing
from shared.catalog import OrderSnapshot
from shared.clock import now_iso

from .workflows import Fulfillment


async def order_edited(app: Fulfillment, order: OrderSnapshot, event_id: str) -> None:
    """Apply the edit once (inbox by event id); an order fulfillment never routed has nothing to change."""
    current = await app.routings.get(order.id)
    if current is None or current.cancelled:
        return
    fos = await app.planned_fulfillment_orders([current])
    skus = {line.sku for line in order.line_items} | {sku for fo in fos.values() for sku in fo.skus}
    context = await app.context(skus)
    now = now_iso()
    saved = await app.routings.apply(
        order.id, lambda routing: order_routing.edit(routing, order, fos, context, now), event_id=event_id
    )
    routing = saved or await app.routings.get(order.id)
    if routing is None:
        return
    existing = await app.materialise(order.id, routing=routing)
    for entry in routing.live_entries:
        if entry.fulfillment_order_id in existing:
            await app.apply(entry.fulfillment_order_id, lambda fo: packing.order_updated(fo, order, now))
