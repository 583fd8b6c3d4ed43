"""What a merchant (through the API or a bulk job) does to one fulfillment order: each action
applies one rule of domain.fulfillment_orders through `Fulfillment.act` and gives back the
fulfillment order as it is now.

`once`: the action is applied at most once per this id (a bulk job resumed after a crash).
Each raises `TransitionRefused` (not allowed in this state), `InvalidRequest` (the request names
something that cannot be), `UnknownFulfillmentOrder`, or LookupError for an unknown fulfillment.
"""

from __future__ import annotations

from services.fulfillment.domain.fulfillment_orders import holds, lifecycle, service_requests, shipping
from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder, FulfillmentRequest, InvalidRequest
from services.fulfillment.domain.fulfillment_orders.service_requests import AnswerKind
from shared.catalog import FulfillmentServiceResponse, FulfillmentServiceShipment, HoldReason, Tracking
from shared.clock import now_iso

from .workflows import Fulfillment


async def fulfil(
    app: Fulfillment, fo_id: str, request: FulfillmentRequest, *, once: str | None = None
) -> FulfillmentOrder:
    """Ship, in at most the shop's `max_parcels_per_shipment` parcels."""
    most = (await app.shop_settings()).max_parcels_per_shipment
    return await app.act(fo_id, lambda fo: shipping.fulfil(fo, request, now_iso(), most), once=once)


async def shipped_by_service(app: Fulfillment, shipment: FulfillmentServiceShipment) -> FulfillmentOrder:
    """The location's fulfillment service shipped (through the API): as its `shipped` answer."""
    return await app.act(
        shipment.fulfillment_order_id, lambda fo: service_requests.shipped_by_service(fo, shipment, now_iso())
    )


async def service_answered(app: Fulfillment, kind: AnswerKind, answer: FulfillmentServiceResponse) -> FulfillmentOrder:
    """The location's fulfillment service answered (through the API): the same rule (ANSWERS) as
    its answer of that kind on Kafka. The same answer again changes nothing."""
    return await app.act(answer.fulfillment_order_id, lambda fo: service_requests.answered(kind, fo, answer, now_iso()))


async def update_tracking(
    app: Fulfillment, fo_id: str, fulfillment_id: str, tracking: Tracking, notify_customer: bool
) -> FulfillmentOrder:
    most = (await app.shop_settings()).max_parcels_per_shipment
    return await app.act(
        fo_id, lambda fo: shipping.update_tracking(fo, fulfillment_id, tracking, notify_customer, now_iso(), most)
    )


async def void_label(app: Fulfillment, fo_id: str, fulfillment_id: str) -> FulfillmentOrder:
    return await app.act(fo_id, lambda fo: shipping.void_label(fo, fulfillment_id, now_iso()))


async def cancel_fulfillment(app: Fulfillment, fo_id: str, fulfillment_id: str) -> FulfillmentOrder:
    return await app.act(fo_id, lambda fo: shipping.cancel_fulfillment(fo, fulfillment_id, now_iso()))


async def place_hold(
    app: Fulfillment, fo_id: str, reason: HoldReason, note: str, *, once: str | None = None
) -> FulfillmentOrder:
    return await app.act(fo_id, lambda fo: holds.place_hold(fo, reason, note, now_iso()), once=once)


async def release_hold(
    app: Fulfillment, fo_id: str, reason: HoldReason | None = None, *, once: str | None = None
) -> FulfillmentOrder:
    """Release the hold of this `reason`, or all of them."""
    return await app.act(fo_id, lambda fo: holds.release_hold(fo, now_iso(), reason), once=once)


async def move(app: Fulfillment, fo_id: str, location_id: str, *, once: str | None = None) -> FulfillmentOrder:
    """Ship from another location, which must be known and have the stock."""
    current = await app.fulfillment_orders.get(fo_id)
    if current is None:
        raise app.unknown(fo_id)
    location = await app.locations.get(location_id)
    if location is None:
        raise InvalidRequest("location_id", f"no location {location_id!r} is known")
    stock = await app.stock.available(current.skus, [location.id])
    available = {sku: quantity for (at, sku), quantity in stock.items() if at == location.id}
    return await app.act(fo_id, lambda fo: lifecycle.move(fo, location, available, now_iso()), once=once)


async def set_fulfill_by(app: Fulfillment, fo_id: str, fulfill_by: str | None) -> FulfillmentOrder:
    return await app.act(fo_id, lambda fo: lifecycle.set_fulfill_by(fo, fulfill_by, now_iso()))


async def schedule(app: Fulfillment, fo_id: str, fulfill_at: str) -> FulfillmentOrder:
    return await app.act(fo_id, lambda fo: lifecycle.schedule(fo, fulfill_at, now_iso()))


async def open_now(app: Fulfillment, fo_id: str) -> FulfillmentOrder:
    """Open a scheduled fulfillment order before its time."""
    return await app.act(fo_id, lambda fo: lifecycle.open_scheduled(fo, now_iso(), due_only=False))


async def submit_request(app: Fulfillment, fo_id: str, message: str = "") -> FulfillmentOrder:
    return await app.act(fo_id, lambda fo: service_requests.submit_request(fo, now_iso(), message))


async def request_cancellation(app: Fulfillment, fo_id: str, message: str = "") -> FulfillmentOrder:
    return await app.act(fo_id, lambda fo: service_requests.request_cancellation(fo, message, now_iso()))


async def withdraw_request(
    app: Fulfillment, fo_id: str, message: str = "", *, once: str | None = None
) -> FulfillmentOrder:
    """Take back a request the fulfillment service has not accepted yet."""
    return await app.act(fo_id, lambda fo: service_requests.withdraw_request(fo, message, now_iso()), once=once)


async def reset_to_unfulfilled(app: Fulfillment, fo_id: str, note: str = "") -> FulfillmentOrder:
    """Take the lines back after a cancellation request the service never answered."""
    return await app.act(fo_id, lambda fo: service_requests.reset_to_unfulfilled(fo, note, now_iso()))
