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
from dataclasses import dataclass, replace
from typing import Any

from services.fulfillment.domain import fulfillment_order as fo_rules
from services.fulfillment.domain import order_routing
from services.fulfillment.domain.order_routing import RoutingContext
from services.fulfillment.domain.routing import LineNeed, route
from services.fulfillment.store import LocationDirectory, SettingsStore, ShopSettings, StockView
from shared.catalog import (
    FulfillmentServiceResponse,
    InventoryLevel,
    InventoryReservation,
    InventoryReservationFailed,
    Location,
    OrderSnapshot,
)
from shared.store import AggregateStore, Change, Document, Rule, now_iso

log = logging.getLogger("fulfillment.service")

FoRule = Callable[[Document], Change | None]
"""A rule of one existing fulfillment order (see domain.fulfillment_order)."""


class UnknownFulfillmentOrder(LookupError):
    """An answer about a fulfillment order this service never made: not retriable (dead-lettered)."""


@dataclass
class SweepReport:
    opened: int = 0
    released: int = 0
    rerouted: int = 0
    repaired: int = 0

    def total(self) -> int:
        return self.opened + self.released + self.rerouted + self.repaired


class Fulfillment:
    def __init__(
        self,
        fulfillment_orders: AggregateStore,
        routings: AggregateStore,
        stock: StockView,
        locations: LocationDirectory,
        settings: SettingsStore,
    ) -> None:
        self.fulfillment_orders = fulfillment_orders
        self.routings = routings
        self.stock = stock
        self.locations = locations
        self.settings = settings

    async def shop_settings(self) -> ShopSettings:
        return await self.settings.get()

    async def context(self, skus: Iterable[str], shop: ShopSettings | None = None) -> RoutingContext:
        shop = shop or await self.settings.get()
        return RoutingContext(
            await self.locations.all(),
            await self.stock.available(skus),
            auto_fulfill=shop.auto_fulfill,
            post_purchase_hold_seconds=shop.post_purchase_hold_seconds,
        )

    # --- orders -------------------------------------------------------------------------

    async def route_paid_order(self, order: OrderSnapshot, event_id: str) -> None:
        context = await self.context(line.sku for line in order.line_items)
        now = now_iso()
        await self.routings.apply(
            order.id, lambda current: order_routing.route_paid_order(current, order, context, now), event_id=event_id
        )
        await self.materialise(order.id)

    async def cancel_order(self, order: OrderSnapshot, reason: str, event_id: str) -> None:
        now = now_iso()
        await self.routings.apply(
            order.id, lambda current: order_routing.cancel(current, order, now), event_id=event_id
        )
        await self.materialise(order.id, cancel_reason=reason)

    async def post_purchase_completed(self, order: OrderSnapshot, event_id: str) -> None:
        context = await self.context(line.sku for line in order.line_items)
        now = now_iso()
        await self.routings.apply(
            order.id,
            lambda current: order_routing.post_purchase_completed(current, order, context, now),
            event_id=event_id,
        )
        await self.materialise(order.id)
        for fo in await self.fulfillment_orders.find({"order_id": order.id, "status": "ON_HOLD"}):
            await self._apply(
                fo["id"], lambda current: fo_rules.release_post_purchase_hold(current, now, expired_only=False)
            )

    async def materialise(self, order_id: str, cancel_reason: str = "the order was cancelled") -> None:
        """Make the fulfillment orders match the stored plan: create what is missing, cancel
        everything of a cancelled order. Safe to repeat, and to run beside another replica."""
        routing = await self.routings.get(order_id)
        if routing is None:
            return
        order = OrderSnapshot.model_validate(routing["order"])
        existing = {fo["id"]: fo for fo in await self.fulfillment_orders.find({"order_id": order_id})}
        now = now_iso()
        live = {entry["fulfillment_order_id"] for entry in order_routing.live_entries(routing)}
        for entry in routing["entries"]:
            fo_id = entry["fulfillment_order_id"]
            if fo_id in live and fo_id not in existing:
                await self.fulfillment_orders.apply(fo_id, _create_if_missing(entry, order, now))
            elif routing["cancelled"] and existing.get(fo_id, {}).get("status") not in fo_rules.TERMINAL:
                await self.fulfillment_orders.apply(fo_id, _cancel_or_tombstone(entry, order, cancel_reason, now))
        revision = routing["revision"]
        await self.routings.apply(order_id, lambda current: order_routing.materialised(current, revision))

    # --- inventory ----------------------------------------------------------------------

    async def reservation_confirmed(self, reserved: InventoryReservation, event_id: str) -> None:
        now = now_iso()
        await self._apply(
            reserved.fulfillment_order_id,
            lambda current: fo_rules.reservation_confirmed(current, reserved.location_id, now),
            event_id=event_id,
        )

    async def reservation_failed(self, failed: InventoryReservationFailed, event_id: str, as_of: str) -> None:
        for shortage in failed.shortages:
            await self.stock.record_shortage(failed.location_id, shortage.sku, shortage.available, as_of, shortage.seq)
        short = ", ".join(f"{s.sku}: {s.requested} requested, {s.available} available" for s in failed.shortages)
        now = now_iso()
        await self._apply(
            failed.fulfillment_order_id,
            lambda current: fo_rules.reservation_failed(current, failed.location_id, short or "no stock", now),
            event_id=event_id,
        )
        fo = await self.fulfillment_orders.get(failed.fulfillment_order_id)
        if fo is not None and fo.get("reroute_pending"):
            await self.finish_reroute(fo)

    async def stock_level_changed(self, level: InventoryLevel, as_of: str) -> None:
        if await self.stock.record(level, as_of):
            await self.retry_out_of_stock([level.sku])

    async def location_updated(self, location: Location, as_of: str) -> None:
        if await self.locations.record(location, as_of):
            await self.retry_out_of_stock()

    async def retry_out_of_stock(self, skus: list[str] | None = None) -> int:
        """Re-route out-of-stock holds that the stock view says can now ship, in part or whole,
        oldest first; what one takes is not offered to the next in the same pass."""
        query: Document = {"out_of_stock": True, "status": "ON_HOLD"}
        if skus:
            query["skus"] = {"$in": skus}
        held_orders = await self.fulfillment_orders.find(query, sort=[("created_at", 1), ("_id", 1)])
        if not held_orders:
            return 0
        context = await self.context({sku for held in held_orders for sku in held["skus"]})
        stock = dict(context.stock)
        rerouted = 0
        for held in held_orders:
            lines = fo_rules.remaining_lines(held)
            needs = [LineNeed(line["line_item_id"], line["sku"], line["quantity"]) for line in lines]
            current = replace(context, stock=dict(stock))
            plan = route(needs, current.locations, current.stock)
            if not plan.allocations:
                continue
            replaced = await self._apply(held["id"], _replace_out_of_stock(now_iso()))
            if replaced is not None:
                await self.finish_reroute(replaced, current)
                rerouted += 1
                for allocation in plan.allocations:
                    for need in allocation.lines:
                        stock[allocation.location.id, need.sku] -= need.quantity
        return rerouted

    async def finish_reroute(self, replaced: Document, context: RoutingContext | None = None) -> None:
        """Plan and create the replacements of a fulfillment order that gave way."""
        order_id = replaced["order_id"]
        context = context or await self.context(line["sku"] for line in replaced["line_items"])
        now = now_iso()
        await self.routings.apply(order_id, lambda current: order_routing.reroute(current, replaced, context, now))
        await self.materialise(order_id)
        routing = await self.routings.get(order_id)
        entry = next(
            (e for e in (routing or {}).get("entries", []) if e["fulfillment_order_id"] == replaced["id"]), None
        )
        replaced_by = (entry or {}).get("replaced_by") or []
        await self._apply(replaced["id"], lambda current: fo_rules.reroute_recorded(current, replaced_by, now))

    # --- the fulfillment service's answers ----------------------------------------------

    async def service_answered(self, answer: FulfillmentServiceResponse, rule: FoRule, event_id: str) -> None:
        """Apply a fulfillment service's answer once (inbox by event id). An answer that does
        not fit (another service's fulfillment order, a status that does not allow it, an unknown
        fulfillment order) raises: the message is dead-lettered with the reason, nothing applied."""

        def known(current: Document | None) -> Change | None:
            if current is None:
                raise UnknownFulfillmentOrder(f"no fulfillment order {answer.fulfillment_order_id!r}")
            return rule(current)

        await self.fulfillment_orders.apply(answer.fulfillment_order_id, known, event_id=event_id)

    # --- the sweep ----------------------------------------------------------------------

    async def sweep(self) -> SweepReport:
        """The periodic pack run: open what is due, release expired post-purchase holds, retry
        out-of-stock holds, and finish anything a crash left half done. Every transition is
        re-checked by its rule under optimistic concurrency, so replicas never do one twice."""
        report = SweepReport()
        now = now_iso()
        for fo in await self.fulfillment_orders.find({"status": "SCHEDULED", "fulfill_at": {"$lte": now}}):
            if await self._apply(fo["id"], lambda current: fo_rules.open_scheduled(current, now, due_only=True)):
                report.opened += 1
        for fo in await self.fulfillment_orders.find(
            {"status": "ON_HOLD", "upsell_release_at": {"$gt": "", "$lte": now}}
        ):
            if await self._apply(
                fo["id"], lambda current: fo_rules.release_post_purchase_hold(current, now, expired_only=True)
            ):
                report.released += 1
        report.rerouted = await self.retry_out_of_stock()
        for fo in await self.fulfillment_orders.find({"reroute_pending": True}):
            await self.finish_reroute(fo)
            report.repaired += 1
        for routing in await self.routings.find({"$expr": {"$lt": ["$materialised_revision", "$revision"]}}):
            await self.materialise(routing["id"])
            report.repaired += 1
        return report

    # --- merchant actions ---------------------------------------------------------------

    async def act(self, fulfillment_order_id: str, rule: FoRule) -> Document | None:
        """Apply a merchant's action (a rule of fo_rules partially applied) to one fulfillment order."""
        return await self._apply(fulfillment_order_id, rule)

    async def act_once(self, fulfillment_order_id: str, rule: FoRule, action_id: str) -> Document | None:
        """Apply a merchant's action at most once per `action_id` (kept in the fulfillment order's
        inbox in the same write): a repeat, e.g. by a bulk job resumed after a crash, is skipped
        (None). Raises LookupError for an unknown fulfillment order."""

        def known(current: Document | None) -> Change | None:
            if current is None:
                raise LookupError(f"fulfillment order {fulfillment_order_id!r} does not exist")
            return rule(current)

        return await self.fulfillment_orders.apply(fulfillment_order_id, known, event_id=action_id)

    async def _apply(self, fo_id: str, rule: FoRule, event_id: str | None = None) -> Document | None:
        def guarded(current: Document | None) -> Change | None:
            return None if current is None else rule(current)

        return await self.fulfillment_orders.apply(fo_id, guarded, event_id=event_id)


def _replace_out_of_stock(now: str) -> FoRule:
    return lambda current: fo_rules.replace_out_of_stock(current, now)


def _create_if_missing(entry: dict[str, Any], order: OrderSnapshot, now: str) -> Rule:
    def rule(current: Document | None) -> Change | None:
        return fo_rules.create(entry, order, now) if current is None else None

    return rule


def _cancel_or_tombstone(entry: dict[str, Any], order: OrderSnapshot, reason: str, now: str) -> Rule:
    def rule(current: Document | None) -> Change | None:
        if current is None:
            return fo_rules.tombstone(entry, order, reason, now)
        return fo_rules.cancel(current, reason, now)

    return rule
