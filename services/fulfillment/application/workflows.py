"""The fulfillment workflows: what happens, in which order, across the service's documents.

The rules themselves live in `domain`; this module loads what a rule needs, applies it
through the store (optimistic concurrency, inbox, outbox) and chains the steps that span
several documents so that each step is idempotent and a crash between two of them is
repaired by a redelivery or by the sweep:

- routing: plan in the order's routing record first, then create the fulfillment orders
  from the stored plan (`materialise`), then mark the plan revision materialised;
- re-routing: the fulfillment order gives way first (cancelled, `reroute_pending`), then the
  routing record plans its replacements, then they are created, then the flag is cleared;
- a fulfillment service's answers: one fulfillment order each, applied once per event id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import Literal

from services.fulfillment.domain import order_routing
from services.fulfillment.domain.fulfillment_orders import holds, lifecycle, service_requests
from services.fulfillment.domain.fulfillment_orders.model import (
    TERMINAL,
    FulfillmentOrder,
    PlanEntry,
    Status,
    Transition,
)
from services.fulfillment.domain.fulfillment_orders.service_requests import AnswerKind
from services.fulfillment.domain.fulfillment_orders.shipping import fulfillment_order_of
from services.fulfillment.domain.order_routing import RoutingContext, RoutingRecord
from services.fulfillment.domain.routing import LineNeed, route
from services.fulfillment.lookups import LocationDirectory, OutOfStockHolds, SettingsStore, ShopSettings, StockView
from services.fulfillment.store import LEGACY_FULFILLMENTS, OUT_OF_STOCK_HOLDS, materialised_update
from shared.catalog import FulfillmentServiceResponse, FulfillmentServiceShipment, OrderSnapshot, inventory
from shared.clock import now_iso
from shared.store import AggregateStore

log = logging.getLogger("fulfillment.application")

FoRule = Callable[[FulfillmentOrder], Transition | None]
"""A rule of one existing fulfillment order (domain.fulfillment_orders)."""


BATCH = 250
EDITED = "the order was edited: what it still had to ship is planned again"
"""Documents one sweep query (or one out-of-stock retry) takes at most; the next pass takes the rest."""


class UnknownFulfillmentOrder(LookupError):
    """No such fulfillment order: 404 for a request; an answer about one this service never made
    is not retriable (dead-lettered)."""


class Fulfillment:
    def __init__(
        self,
        fulfillment_orders: AggregateStore[FulfillmentOrder],
        routings: AggregateStore[RoutingRecord],
        stock: StockView,
        locations: LocationDirectory,
        settings: SettingsStore,
        out_of_stock: OutOfStockHolds | None = None,
    ) -> None:
        self.fulfillment_orders = fulfillment_orders
        self.routings = routings
        self.stock = stock
        self.locations = locations
        self.settings = settings
        database = fulfillment_orders.collection.database
        self.out_of_stock = out_of_stock or OutOfStockHolds(database[OUT_OF_STOCK_HOLDS])
        self.legacy_fulfillments = database[LEGACY_FULFILLMENTS]

    async def shop_settings(self) -> ShopSettings:
        return await self.settings.get()

    async def context(self, skus: Iterable[str], shop: ShopSettings | None = None) -> RoutingContext:
        """Settings and locations from memory (see store.CACHE_SECONDS), the stock in one lookup."""
        shop = shop or await self.settings.get()
        locations = await self.locations.all()
        return RoutingContext(
            locations,
            await self.stock.available(skus, [location.id for location in locations]),
            auto_fulfill=shop.auto_fulfill,
            post_purchase_hold_seconds=shop.post_purchase_hold_seconds,
        )

    # --- orders -------------------------------------------------------------------------

    async def route_paid_order(self, order: OrderSnapshot, event_id: str) -> None:
        """Plan, then create the plan's fulfillment orders. A first delivery (the usual case) writes
        the plan and each fulfillment order without reading first; when the plan exists already (a
        redelivery, or the order was cancelled first), the stored plan decides, never a new one."""
        context = await self.context(line.sku for line in order.line_items)
        now = now_iso()
        plan = order_routing.route_paid_order(None, order, context, now)
        routing = await self.routings.create(order.id, plan, event_id=event_id) if plan else None
        if routing is None:
            await self.materialise(order.id)
        else:
            await self.materialise(order.id, routing=routing, fresh=True)

    async def cancel_order(self, order: OrderSnapshot, reason: str, event_id: str) -> None:
        now = now_iso()
        routing = await self.routings.apply(
            order.id, lambda current: order_routing.cancel(current, order, now), event_id=event_id
        )
        await self.materialise(order.id, cancel_reason=reason, routing=routing)

    async def post_purchase_completed(self, order: OrderSnapshot, event_id: str) -> None:
        context = await self.context(line.sku for line in order.line_items)
        now = now_iso()
        routing = await self.routings.apply(
            order.id,
            lambda current: order_routing.post_purchase_completed(current, order, context, now),
            event_id=event_id,
        )
        fulfillment_orders = await self.materialise(order.id, routing=routing)
        for fo in fulfillment_orders.values():
            if fo.status == Status.ON_HOLD:
                await self.apply(fo.id, lambda held: holds.release_post_purchase_hold(held, now, expired_only=False))

    async def materialise(
        self,
        order_id: str,
        cancel_reason: str = "the order was cancelled",
        *,
        routing: RoutingRecord | None = None,
        fresh: bool = False,
    ) -> dict[str, FulfillmentOrder]:
        """Make the fulfillment orders match the stored plan (`routing`, read when not given):
        create what is missing, cancel everything of a cancelled order, and mark the plan done.
        Safe to repeat, and to run beside another replica. Returns the plan's fulfillment orders
        as they are now, by id.

        `fresh`: the plan was written just now, so none of its fulfillment orders can exist but by
        a concurrent run of this (which creation tolerates); and the plan is not marked done, the
        sweep confirms it at its `materialise_check_at`, many plans in one write, rather than one
        more write per order here."""
        routing = routing or await self.routings.get(order_id)
        if routing is None:
            return {}
        existing = {} if fresh else await self.planned_fulfillment_orders([routing])
        await self.materialise_plan(routing, existing, cancel_reason)
        if not fresh and routing.materialise_check_at is not None:
            await self._mark_materialised(order_id, routing.revision)
        return existing

    async def planned_fulfillment_orders(self, routings: list[RoutingRecord]) -> dict[str, FulfillmentOrder]:
        """The existing fulfillment orders of these plans, by id: one lookup by key."""
        planned = [entry.fulfillment_order_id for routing in routings for entry in routing.entries]
        found = await self.fulfillment_orders.find({"_id": {"$in": planned}}, limit=len(planned)) if planned else []
        return {fo.id: fo for fo in found}

    async def materialise_plan(
        self,
        routing: RoutingRecord,
        existing: dict[str, FulfillmentOrder],
        cancel_reason: str = "the order was cancelled",
    ) -> int:
        """Create the plan's missing fulfillment orders, cancel those of a cancelled order;
        `existing` (by id) is kept up to date. How many were created or cancelled."""
        order = routing.order
        now = now_iso()
        live = {entry.fulfillment_order_id for entry in routing.live_entries}
        written = 0
        for entry in routing.entries:
            fo_id = entry.fulfillment_order_id
            if fo_id in live and fo_id not in existing:
                created = await self.fulfillment_orders.create(fo_id, lifecycle.create(entry, order, now))
                if created is not None:
                    written += 1
                    await self._indexed(created)
                else:  # created meanwhile by another run of this
                    created = await self.fulfillment_orders.get(fo_id)
                if created is not None:
                    existing[fo_id] = created
            elif (routing.cancelled and _still_live(existing.get(fo_id))) or (
                entry.replaced_by is not None and fo_id in existing and _still_live(existing[fo_id])
            ):  # the order's cancellation, or an edit that replaced it (a re-route cancels first)
                why = cancel_reason if routing.cancelled else EDITED
                cancelled = await self.fulfillment_orders.apply(fo_id, _cancel_or_tombstone(entry, order, why, now))
                if cancelled is not None:
                    written += 1
                    existing[fo_id] = cancelled
        return written

    async def _mark_materialised(self, order_id: str, revision: int) -> None:
        """`order_routing.materialised` as one conditional update, without reading the plan again:
        only if the plan is still at `revision`. The version goes up, so a writer holding an older
        copy of the plan reads it again rather than overwrite the mark."""
        await self.routings.collection.update_one(
            {"_id": order_id, "revision": {"$eq": revision}},
            {"$set": materialised_update(revision), "$inc": {"version": 1}},
        )

    # --- inventory ----------------------------------------------------------------------

    async def reservation_confirmed(self, reserved: inventory.InventoryReservation, event_id: str) -> None:
        now = now_iso()
        await self.apply(
            reserved.fulfillment_order_id,
            lambda fo: lifecycle.reservation_confirmed(fo, reserved.location_id, now),
            event_id=event_id,
        )

    async def reservation_failed(self, failed: inventory.InventoryReservationFailed, event_id: str, as_of: str) -> None:
        for shortage in failed.shortages:
            await self.stock.record_shortage(failed.location_id, shortage.sku, shortage.available, as_of, shortage.seq)
        short = ", ".join(f"{s.sku}: {s.requested} requested, {s.available} available" for s in failed.shortages)
        now = now_iso()
        fo = await self.apply(
            failed.fulfillment_order_id,
            lambda current: lifecycle.reservation_failed(current, failed.location_id, short or "no stock", now),
            event_id=event_id,
        )
        if fo is None:  # applied before (a redelivery): finish what it started, if need be
            fo = await self.fulfillment_orders.get(failed.fulfillment_order_id)
        if fo is not None and fo.reroute_pending:
            await self.finish_reroute(fo)

    async def stock_level_changed(self, level: inventory.InventoryLevel, as_of: str) -> None:
        if await self.stock.record(level, as_of):
            await self.retry_out_of_stock([level.sku])

    async def location_updated(self, location: inventory.Location, as_of: str) -> None:
        if await self.locations.record(location, as_of):
            await self.retry_out_of_stock()

    async def retry_out_of_stock(self, skus: list[str] | None = None) -> int:
        """Re-route out-of-stock holds that the stock view says can now ship, in part or whole,
        oldest first; what one takes is not offered to the next in the same pass. With `skus`,
        the holds waiting for them (through `OutOfStockHolds`); without, the oldest of all."""
        if skus:
            found = await self._held_for(skus)
        else:
            found = await self.fulfillment_orders.find(
                {"out_of_stock": {"$eq": True}}, sort=[("created_at", 1), ("_id", 1)], limit=BATCH
            )
        if not found:
            return 0
        context = await self.context({sku for held in found for sku in held.skus})
        stock = dict(context.stock)
        rerouted = 0
        for held in found:
            needs = [LineNeed(line.line_item_id, line.sku, line.quantity) for line in held.remaining_lines()]
            current = replace(context, stock=dict(stock))
            plan = route(needs, current.locations, current.stock)
            if not plan.allocations:
                continue
            replaced = await self.apply(held.id, _replace_out_of_stock(now_iso()))
            if replaced is not None:
                await self.finish_reroute(replaced, current)
                rerouted += 1
                for allocation in plan.allocations:
                    for need in allocation.lines:
                        stock[allocation.location.id, need.sku] -= need.quantity
        return rerouted

    async def _held_for(self, skus: list[str]) -> list[FulfillmentOrder]:
        """The out-of-stock holds waiting for any of `skus`, oldest first; entries of holds that
        no longer wait are forgotten."""
        entries = await self.out_of_stock.waiting_for(skus, BATCH)
        wanted = sorted({entry.fulfillment_order_id for entry in entries})
        found = await self.fulfillment_orders.find({"_id": {"$in": wanted}}, limit=len(wanted)) if wanted else []
        held = {fo.id: fo for fo in found if fo.is_out_of_stock_hold}
        await self.out_of_stock.forget([entry.id for entry in entries if entry.fulfillment_order_id not in held])
        return sorted(held.values(), key=lambda fo: (fo.created_at, fo.id))

    async def finish_reroute(self, replaced: FulfillmentOrder, context: RoutingContext | None = None) -> None:
        """Plan and create the replacements of a fulfillment order that gave way."""
        order_id = replaced.order_id
        context = context or await self.context(line.sku for line in replaced.line_items)
        now = now_iso()
        routing = await self.routings.apply(
            order_id, lambda current: order_routing.reroute(current, replaced, context, now)
        )
        routing = routing or await self.routings.get(order_id)  # planned before: the stored plan
        await self.materialise(order_id, routing=routing)
        entry = routing.entry(replaced.id) if routing else None
        replaced_by = list(entry.replaced_by or ()) if entry else []
        await self.apply(replaced.id, lambda fo: lifecycle.reroute_recorded(fo, replaced_by, now))

    # --- the fulfillment service's answers ----------------------------------------------

    async def service_answered(self, kind: AnswerKind, answer: FulfillmentServiceResponse, event_id: str) -> None:
        """Apply a fulfillment service's answer of `kind` once (inbox by event id). An answer that
        does not fit (another service's fulfillment order, a status that does not allow it, an
        unknown fulfillment order) raises: the message is dead-lettered with the reason, nothing applied."""
        await self.apply(
            answer.fulfillment_order_id,
            lambda fo: service_requests.answered(kind, fo, answer, now_iso()),
            event_id,
            missing=self.unknown(answer.fulfillment_order_id),
        )

    async def shipped_by_service(self, shipment: FulfillmentServiceShipment, event_id: str | None = None) -> None:
        """The fulfillment service shipped some or all lines: as `service_answered`."""
        await self.apply(
            shipment.fulfillment_order_id,
            lambda fo: service_requests.shipped_by_service(fo, shipment, now_iso()),
            event_id,
            missing=self.unknown(shipment.fulfillment_order_id),
        )

    # --- lookups ------------------------------------------------------------------------

    async def fulfillment_order_holding(self, fulfillment_id: str) -> FulfillmentOrder | None:
        """The fulfillment order a fulfillment (shipment) belongs to, by key: the fulfillment's id
        names it (`fulfillment_order_of`); one made before that is found in the table the
        upgrade kept of them (services/fulfillment/upgrade.py)."""
        fo_id = fulfillment_order_of(fulfillment_id)
        if fo_id is None:
            legacy = await self.legacy_fulfillments.find_one({"_id": fulfillment_id})
            fo_id = legacy["fulfillment_order_id"] if legacy else None
        fo = await self.fulfillment_orders.get(fo_id) if fo_id else None
        return fo if fo is not None and fulfillment_id in fo.fulfillments else None

    # --- one fulfillment order -----------------------------------------------------------

    async def act(self, fo_id: str, rule: FoRule, *, once: str | None = None) -> FulfillmentOrder:
        """Apply a merchant's action (see application.actions) to one fulfillment order, at most
        once per `once` where given (kept in the fulfillment order's inbox in the same write): a
        repeat, e.g. by a bulk job resumed after a crash, changes nothing. The fulfillment order as
        it is now; UnknownFulfillmentOrder when there is none."""
        saved = await self.apply(fo_id, rule, once, missing=self.unknown(fo_id))
        current = saved or await self.fulfillment_orders.get(fo_id)
        if current is None:
            raise self.unknown(fo_id)
        return current

    @staticmethod
    def unknown(fo_id: str) -> UnknownFulfillmentOrder:
        return UnknownFulfillmentOrder(f"fulfillment order {fo_id!r} does not exist")

    async def apply(
        self,
        fo_id: str,
        rule: FoRule,
        event_id: str | None = None,
        missing: Literal["skip", "raise"] | BaseException = "skip",
    ) -> FulfillmentOrder | None:
        """Apply `rule` to an existing fulfillment order (`missing` says what else), then index it."""
        saved = await self.fulfillment_orders.apply(fo_id, rule, event_id=event_id, missing=missing)
        return await self._indexed(saved)

    async def _indexed(self, saved: FulfillmentOrder | None) -> FulfillmentOrder | None:
        """After a fulfillment order is written: an out-of-stock hold is entered where stock
        arriving for its skus finds it (`OutOfStockHolds`; only those, so it costs others nothing)."""
        if saved is not None and saved.is_out_of_stock_hold:
            await self.out_of_stock.add(saved.id, saved.created_at, saved.skus)
        return saved


def _replace_out_of_stock(now: str) -> FoRule:
    return partial(lifecycle.replace_out_of_stock, now=now)


def _still_live(fo: FulfillmentOrder | None) -> bool:
    return fo is None or fo.status not in TERMINAL


def _cancel_or_tombstone(
    entry: PlanEntry, order: OrderSnapshot, reason: str, now: str
) -> Callable[[FulfillmentOrder | None], Transition | None]:
    def rule(current: FulfillmentOrder | None) -> Transition | None:
        if current is None:
            return lifecycle.tombstone(entry, order, reason, now)
        return lifecycle.cancel(current, reason, now)

    return rule
