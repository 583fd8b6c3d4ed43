"""HTTP routes of fulfillment orders and their fulfillments (shipments): each translates a request
into one call of application.actions and answers with the fulfillment order as it is then."""

from __future__ import annotations

from collections.abc import Awaitable
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query

from services.fulfillment import listing
from services.fulfillment.application import Fulfillment, actions
from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder
from shared.auth import SERVICE_SCOPE, Caller, reach_of
from shared.catalog import FulfillmentOrderStatus, FulfillmentSnapshot, WarehouseStatus
from shared.clock import iso
from shared.http import NotFound

from .bodies import (
    CancellationRequestIn,
    FulfillByIn,
    FulfillmentIn,
    HoldIn,
    MoveIn,
    ReleaseIn,
    ResetIn,
    ScheduleIn,
    SubmitIn,
    TrackingUpdateIn,
)
from .common import (
    READ,
    SEEN_BY_SERVICES,
    SHIPPED_BY_SERVICES,
    WRITE,
    FulfillmentOrderPage,
    FulfillmentOrderView,
    ShipmentView,
    fulfillment_order_view,
    invalid_field,
    known_id,
    refusals,
    shipment_view,
)

FO = "/fulfillment-orders/{fulfillment_order_id}"
TAGS: list[str | Enum] = ["fulfillment orders"]


def build_router(fulfillment: Fulfillment) -> APIRouter:
    router = APIRouter()

    async def load(fulfillment_order_id: str) -> FulfillmentOrder:
        found = await fulfillment.fulfillment_orders.get(known_id("fulfillment order", fulfillment_order_id))
        if found is None:
            raise NotFound("fulfillment order", fulfillment_order_id)
        return found

    async def holding(fulfillment_id: str) -> FulfillmentOrder:
        """The fulfillment order a fulfillment (shipment) belongs to."""
        found = await fulfillment.fulfillment_order_holding(known_id("fulfillment", fulfillment_id))
        if found is None:
            raise NotFound("fulfillment", fulfillment_id)
        return found

    # --- fulfillment orders -------------------------------------------------------------

    @router.get("/fulfillment-orders", dependencies=[SEEN_BY_SERVICES], tags=TAGS)
    async def list_fulfillment_orders(
        who: Caller,
        order_id: str | None = None,
        status: FulfillmentOrderStatus | None = None,
        assigned: Annotated[
            bool, Query(description="only those at the locations the caller's fulfillment service runs")
        ] = False,
        location_id: str | None = None,
        warehouse_status: Annotated[
            WarehouseStatus | None,
            Query(description="order, packing (IN_PROGRESS at a merchant-managed location) or shipped"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=250)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        after: Annotated[
            str | None,
            Query(max_length=400, description="the `next_cursor` of the previous page: the page after it"),
        ] = None,
    ) -> FulfillmentOrderPage:
        """Sorted by fulfill-by deadline, soonest first; those without one come last. A fulfillment
        service's token lists only the fulfillment orders at the locations it runs (so does
        `assigned=true`, for a token that is also a merchant's).

        Pages: `next_cursor` is where the next page starts (null on the last page); pass it as
        `after` to get that page. Unlike `offset`, a cursor costs the same however deep the page,
        and a page never repeats or skips a fulfillment order when others are added meanwhile."""
        try:
            resume = listing.decode_cursor(after) if after is not None else None
        except listing.BadCursor:
            raise invalid_field("after", "not a cursor this listing returned (next_cursor)") from None
        if assigned and not who.fulfillment_services:
            raise invalid_field("assigned", f"only a fulfillment service's token ({SERVICE_SCOPE}) has assigned ones")
        own = assigned or not who.may("fulfillment:read")
        filters = listing.Filters(
            order_id=order_id or None,
            status=status.value if status else None,
            location_id=location_id or None,
            warehouse_status=warehouse_status.value if warehouse_status else None,
            fulfillment_services=sorted(who.fulfillment_services) if own else None,
        )
        found, next_cursor = await listing.page(
            fulfillment.fulfillment_orders, filters, after=resume, offset=offset, limit=limit
        )
        return FulfillmentOrderPage(items=[fulfillment_order_view(fo) for fo in found], next_cursor=next_cursor)

    @router.get(FO, dependencies=[SEEN_BY_SERVICES], tags=TAGS)
    async def get_fulfillment_order(fulfillment_order_id: str, who: Caller) -> FulfillmentOrderView:
        fo = await load(fulfillment_order_id)
        reach_of(who, "fulfillment:read", fo.fulfillment_service)
        return fulfillment_order_view(fo)

    @router.post(FO + "/fulfillments", status_code=201, dependencies=[SHIPPED_BY_SERVICES], tags=["fulfillments"])
    async def create_fulfillment(fulfillment_order_id: str, body: FulfillmentIn, who: Caller) -> ShipmentView:
        """Ship all remaining lines, or some (a partial shipment), with tracking if known. The
        location's fulfillment service may too (with its token), for what it was asked to ship."""
        before = await load(fulfillment_order_id)
        reach_of(who, "fulfillment:write", before.fulfillment_service)
        with refusals():
            if who.may("fulfillment:write"):
                fo = await actions.fulfil(fulfillment, fulfillment_order_id, body.request())
            else:  # the location's fulfillment service: the same rule as its `shipped` answer on Kafka
                fo = await actions.shipped_by_service(fulfillment, body.shipment(before))
        return shipment_view(fo, _newest_fulfillment(before, fo))

    async def shown(action: Awaitable[FulfillmentOrder]) -> FulfillmentOrderView:
        """The fulfillment order an action leaves, as the API shows it."""
        return fulfillment_order_view(await acted(action))

    @router.post(FO + "/hold", dependencies=[WRITE], tags=TAGS)
    async def hold(fulfillment_order_id: str, body: HoldIn) -> FulfillmentOrderView:
        return await shown(actions.place_hold(fulfillment, known_fo(fulfillment_order_id), body.reason, body.note))

    @router.post(FO + "/release-hold", dependencies=[WRITE], tags=TAGS)
    async def release_hold(fulfillment_order_id: str, body: ReleaseIn | None = None) -> FulfillmentOrderView:
        reason = body.reason if body else None
        return await shown(actions.release_hold(fulfillment, known_fo(fulfillment_order_id), reason))

    @router.post(FO + "/move", dependencies=[WRITE], tags=TAGS)
    async def move(fulfillment_order_id: str, body: MoveIn) -> FulfillmentOrderView:
        """Ship from another location: inventory reserves there and releases here."""
        return await shown(actions.move(fulfillment, known_fo(fulfillment_order_id), body.location_id))

    @router.post(FO + "/fulfill-by", dependencies=[WRITE], tags=TAGS)
    async def fulfill_by(fulfillment_order_id: str, body: FulfillByIn) -> FulfillmentOrderView:
        deadline = iso(body.fulfill_by) if body.fulfill_by else None
        return await shown(actions.set_fulfill_by(fulfillment, known_fo(fulfillment_order_id), deadline))

    @router.post(FO + "/schedule", dependencies=[WRITE], tags=TAGS)
    async def schedule(fulfillment_order_id: str, body: ScheduleIn) -> FulfillmentOrderView:
        """Open only at fulfill_at (the sweep opens it then)."""
        return await shown(actions.schedule(fulfillment, known_fo(fulfillment_order_id), iso(body.fulfill_at)))

    @router.post(FO + "/open", dependencies=[WRITE], tags=TAGS)
    async def open_now(fulfillment_order_id: str) -> FulfillmentOrderView:
        """Open a scheduled fulfillment order before its time."""
        return await shown(actions.open_now(fulfillment, known_fo(fulfillment_order_id)))

    @router.post(FO + "/submit-request", dependencies=[WRITE], tags=TAGS)
    async def submit_request(fulfillment_order_id: str, body: SubmitIn | None = None) -> FulfillmentOrderView:
        """Ask the location's fulfillment service to ship it."""
        message = body.message if body else ""
        return await shown(actions.submit_request(fulfillment, known_fo(fulfillment_order_id), message))

    @router.post(FO + "/request-cancellation", dependencies=[WRITE], tags=TAGS)
    async def request_cancellation(
        fulfillment_order_id: str, body: CancellationRequestIn | None = None
    ) -> FulfillmentOrderView:
        """Ask the fulfillment service to cancel what it was asked to ship; it accepts or rejects."""
        message = body.message if body else ""
        return await shown(actions.request_cancellation(fulfillment, known_fo(fulfillment_order_id), message))

    @router.post(FO + "/withdraw-request", dependencies=[WRITE], tags=TAGS)
    async def withdraw_request(fulfillment_order_id: str, body: SubmitIn | None = None) -> FulfillmentOrderView:
        """Take back a request the fulfillment service has not accepted yet (it is told): back to OPEN."""
        message = body.message if body else ""
        return await shown(actions.withdraw_request(fulfillment, known_fo(fulfillment_order_id), message))

    @router.post(FO + "/reset-to-unfulfilled", dependencies=[WRITE], tags=TAGS)
    async def reset_to_unfulfilled(fulfillment_order_id: str, body: ResetIn | None = None) -> FulfillmentOrderView:
        """After a cancellation request the service never answered: the lines back to OPEN (the
        timeline warns that the service may still ship them)."""
        note = body.note if body else ""
        return await shown(actions.reset_to_unfulfilled(fulfillment, known_fo(fulfillment_order_id), note))

    # --- fulfillments -------------------------------------------------------------------

    @router.get("/fulfillments/{fulfillment_id}", dependencies=[READ], tags=["fulfillments"])
    async def get_fulfillment(fulfillment_id: str) -> FulfillmentSnapshot:
        return (await holding(fulfillment_id)).fulfillment(fulfillment_id)

    @router.post("/fulfillments/{fulfillment_id}/tracking", dependencies=[WRITE], tags=["fulfillments"])
    async def update_tracking(fulfillment_id: str, body: TrackingUpdateIn) -> FulfillmentSnapshot:
        """Add or change the shipment's tracking; it replaces what was there."""
        fo = await holding(fulfillment_id)
        change = actions.update_tracking(fulfillment, fo.id, fulfillment_id, body.tracking(), body.notify_customer)
        return (await acted(change)).fulfillment(fulfillment_id)

    @router.post("/fulfillments/{fulfillment_id}/void-label", dependencies=[WRITE], tags=["fulfillments"])
    async def void_label(fulfillment_id: str) -> FulfillmentSnapshot:
        fo = await holding(fulfillment_id)
        return (await acted(actions.void_label(fulfillment, fo.id, fulfillment_id))).fulfillment(fulfillment_id)

    @router.post("/fulfillments/{fulfillment_id}/cancel", dependencies=[WRITE], tags=["fulfillments"])
    async def cancel_fulfillment(fulfillment_id: str) -> ShipmentView:
        """Undo a shipment: its lines go back to unfulfilled and their stock back to reserved."""
        fo = await holding(fulfillment_id)
        saved = await acted(actions.cancel_fulfillment(fulfillment, fo.id, fulfillment_id))
        return shipment_view(saved, fulfillment_id)

    return router


async def acted(action: Awaitable[FulfillmentOrder]) -> FulfillmentOrder:
    """The fulfillment order an action leaves; a rule's refusal as the HTTP error that says why."""
    with refusals():
        return await action


def known_fo(fulfillment_order_id: str) -> str:
    return known_id("fulfillment order", fulfillment_order_id)


def _newest_fulfillment(before: FulfillmentOrder, after: FulfillmentOrder) -> str:
    """The id of the fulfillment a shipment made (the latest one, when the request was a repeat)."""
    new_ids = [fid for fid in after.fulfillments if fid not in before.fulfillments]
    return new_ids[-1] if new_ids else max(after.fulfillments.values(), key=lambda f: f.created_at).id
