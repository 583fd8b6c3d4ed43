"""Fulfillment's reactions to other services' events: each translates the event into one
workflow call. Idempotent by event id (the stores' inbox) and by the rules themselves. A
fulfillment service's answer is applied only with its proof (see `answered`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.fulfillment.application import Fulfillment
from services.fulfillment.application.editing import order_edited
from services.fulfillment.application.packing import PackRuns
from services.fulfillment.domain.fulfillment_orders.service_requests import ANSWERS, AnswerKind
from shared.auth import Authenticator
from shared.catalog import (
    FulfillmentRequestRejection,
    FulfillmentServiceResponse,
    FulfillmentServiceShipment,
    InventoryLevel,
    InventoryReservation,
    InventoryReservationFailed,
    Location,
    OrderCancelled,
    OrderCreated,
    OrderEdited,
    OrderPaid,
    OrderPostPurchaseCompleted,
    OrderWaitingChanged,
)
from shared.clock import iso, now_iso
from shared.events import CloudEvent, acting_as
from shared.messaging import EventSubscriptions


def build_subscriptions(
    fulfillment: Fulfillment, authenticator: Authenticator, pack_runs: PackRuns
) -> EventSubscriptions:
    subscriptions = EventSubscriptions()

    # --- orders: routing, and what the pack run knows of each order (paid, waiting, draft) --

    @subscriptions.on("order.created", "order.waiting_changed")
    async def on_order_seen(event: CloudEvent, seen: OrderCreated | OrderWaitingChanged) -> None:
        await pack_runs.order_seen(seen.order, _as_of(event), event.id, first=event.type == "order.created")

    @subscriptions.on("order.paid")
    async def on_order_paid(event: CloudEvent, paid: OrderPaid) -> None:
        await fulfillment.route_paid_order(paid.order, event.id)
        await pack_runs.order_seen(paid.order, _as_of(event), event.id)

    @subscriptions.on("order.cancelled")
    async def on_order_cancelled(event: CloudEvent, cancelled: OrderCancelled) -> None:
        await fulfillment.cancel_order(cancelled.order, f"the order was cancelled ({cancelled.reason})", event.id)
        await pack_runs.order_seen(cancelled.order, _as_of(event), event.id, cancelled=True)

    @subscriptions.on("order.post_purchase_completed")
    async def on_post_purchase_completed(event: CloudEvent, completed: OrderPostPurchaseCompleted) -> None:
        await fulfillment.post_purchase_completed(completed.order, event.id)
        await pack_runs.order_seen(completed.order, _as_of(event), event.id, repack=True)

    @subscriptions.on("order.edited")
    async def on_order_edited(event: CloudEvent, edited: OrderEdited) -> None:
        await order_edited(fulfillment, edited.order, event.id)
        await pack_runs.order_seen(edited.order, _as_of(event), event.id, repack=True)

    @subscriptions.on("inventory.reserved")
    async def on_reserved(event: CloudEvent, reserved: InventoryReservation) -> None:
        await fulfillment.reservation_confirmed(reserved, event.id)

    @subscriptions.on("inventory.reservation_failed")
    async def on_reservation_failed(event: CloudEvent, failed: InventoryReservationFailed) -> None:
        await fulfillment.reservation_failed(failed, event.id, _as_of(event))

    @subscriptions.on("inventory.level_changed")
    async def on_level_changed(event: CloudEvent, level: InventoryLevel) -> None:
        await fulfillment.stock_level_changed(level, _as_of(event))

    @subscriptions.on("location.updated")
    async def on_location_updated(event: CloudEvent, location: Location) -> None:
        await fulfillment.location_updated(location, _as_of(event))

    # --- what the fulfillment services answer (fulfillment.responses.v1) ----------------
    # Each answer must carry its service's proof (shared/auth.py): one that does not is
    # dead-lettered with the reason before anything is applied. What it causes is its doing.

    @asynccontextmanager
    async def answering(event: CloudEvent, answer: FulfillmentServiceResponse) -> AsyncIterator[None]:
        service = await authenticator.verify_answer(event, answer.fulfillment_service)
        with acting_as(service.subject):
            yield

    @subscriptions.on(*(f"fulfillment_service.{kind}" for kind in ANSWERS if kind != "request_rejected"))
    async def on_answer(event: CloudEvent, answer: FulfillmentServiceResponse) -> None:
        async with answering(event, answer):
            await fulfillment.service_answered(_KINDS[event.type], answer, event.id)

    @subscriptions.on("fulfillment_service.request_rejected")
    async def on_request_rejected(event: CloudEvent, answer: FulfillmentRequestRejection) -> None:
        async with answering(event, answer):
            await fulfillment.service_answered("request_rejected", answer, event.id)

    @subscriptions.on("fulfillment_service.shipped")
    async def on_shipped(event: CloudEvent, answer: FulfillmentServiceShipment) -> None:
        async with answering(event, answer):
            await fulfillment.shipped_by_service(answer, event.id)

    return subscriptions


_KINDS: dict[str, AnswerKind] = {f"fulfillment_service.{kind}": kind for kind in ANSWERS}


def _as_of(event: CloudEvent) -> str:
    """When the producer saw this state: a later snapshot must not be overwritten by an older one.
    Never later than now: a producer's clock ahead (or a forged time) must not make a snapshot
    look newer than every one still to come."""
    return min(iso(event.time), now_iso())
