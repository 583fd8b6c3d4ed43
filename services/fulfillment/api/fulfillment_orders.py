"""HTTP routes of fulfillment orders and their fulfillments (shipments): each translates a request
into one call of application.actions and answers with the fulfillment order as it is then."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.fulfillment import listing
from services.fulfillment.application import Fulfillment, actions
from services.fulfillment.domain.fulfillment_orders.model import FulfillmentOrder
from shared.auth import SERVICE_SCOPE, Caller, reach_of
from shared.catalog import (
    FulfillmentOrderStatus,
    FulfillmentSnapshot,
    WarehouseStatus,
)
from shared.clock import iso
from shared.http import NotFound
from shared.openapi import shows

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
    fulfillment_view,
    invalid_field,
    known_id,
    refusals,
)


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

    @router.get(
        "/fulfillment-orders",
        **shows(FulfillmentOrderPage),
        dependencies=[SEEN_BY_SERVICES],
        tags=["fulfillment orders"],
    )
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
    ) -> dict[str, Any]:
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
        return {"items": [fulfillment_order_view(fo) for fo in found], "next_cursor": next_cursor}

    @router.get(
        "/fulfillment-orders/{fulfillment_order_id}",
        **shows(FulfillmentOrderView),
        dependencies=[SEEN_BY_SERVICES],
        tags=["fulfillment orders"],
    )
    async def get_fulfillment_order(fulfillment_order_id: str, who: Caller) -> dict[str, Any]:
        fo = await load(fulfillment_order_id)
        reach_of(who, "fulfillment:read", fo.fulfillment_service)
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/fulfillments",
        **shows(ShipmentView, 201),
        dependencies=[SHIPPED_BY_SERVICES],
        tags=["fulfillments"],
    )
    async def create_fulfillment(fulfillment_order_id: str, body: FulfillmentIn, who: Caller) -> dict[str, Any]:
        """Ship all remaining lines, or some (a partial shipment), with tracking if known. The
        location's fulfillment service may too (with its token), for what it was asked to ship."""
        before = await load(fulfillment_order_id)
        reach_of(who, "fulfillment:write", before.fulfillment_service)
        with refusals():
            if who.may("fulfillment:write"):
                fo = await actions.fulfil(fulfillment, fulfillment_order_id, body.request())
            else:  # the location's fulfillment service: the same rule as its `shipped` answer on Kafka
                fo = await actions.shipped_by_service(fulfillment, body.shipment(before))
        return {**_newest_fulfillment(before, fo), "fulfillment_order": fulfillment_order_view(fo)}

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/hold",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def hold(fulfillment_order_id: str, body: HoldIn) -> dict[str, Any]:
        with refusals():
            fo = await actions.place_hold(fulfillment, known_fo(fulfillment_order_id), body.reason, body.note)
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/release-hold",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def release_hold(fulfillment_order_id: str, body: ReleaseIn | None = None) -> dict[str, Any]:
        with refusals():
            fo = await actions.release_hold(fulfillment, known_fo(fulfillment_order_id), body.reason if body else None)
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/move",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def move(fulfillment_order_id: str, body: MoveIn) -> dict[str, Any]:
        """Ship from another location: inventory reserves there and releases here."""
        with refusals():
            fo = await actions.move(fulfillment, known_fo(fulfillment_order_id), body.location_id)
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/fulfill-by",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def fulfill_by(fulfillment_order_id: str, body: FulfillByIn) -> dict[str, Any]:
        deadline = iso(body.fulfill_by) if body.fulfill_by else None
        with refusals():
            fo = await actions.set_fulfill_by(fulfillment, known_fo(fulfillment_order_id), deadline)
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/schedule",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def schedule(fulfillment_order_id: str, body: ScheduleIn) -> dict[str, Any]:
        """Open only at fulfill_at (the sweep opens it then)."""
        with refusals():
            fo = await actions.schedule(fulfillment, known_fo(fulfillment_order_id), iso(body.fulfill_at))
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/open",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def open_now(fulfillment_order_id: str) -> dict[str, Any]:
        """Open a scheduled fulfillment order before its time."""
        with refusals():
            fo = await actions.open_now(fulfillment, known_fo(fulfillment_order_id))
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/submit-request",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def submit_request(fulfillment_order_id: str, body: SubmitIn | None = None) -> dict[str, Any]:
        """Ask the location's fulfillment service to ship it."""
        with refusals():
            fo = await actions.submit_request(fulfillment, known_fo(fulfillment_order_id), body.message if body else "")
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/request-cancellation",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def request_cancellation(
        fulfillment_order_id: str, body: CancellationRequestIn | None = None
    ) -> dict[str, Any]:
        """Ask the fulfillment service to cancel what it was asked to ship; it accepts or rejects."""
        message = body.message if body else ""
        with refusals():
            fo = await actions.request_cancellation(fulfillment, known_fo(fulfillment_order_id), message)
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/withdraw-request",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def withdraw_request(fulfillment_order_id: str, body: SubmitIn | None = None) -> dict[str, Any]:
        """Take back a request the fulfillment service has not accepted yet (it is told): back to OPEN."""
        message = body.message if body else ""
        with refusals():
            fo = await actions.withdraw_request(fulfillment, known_fo(fulfillment_order_id), message)
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/reset-to-unfulfilled",
        **shows(FulfillmentOrderView),
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def reset_to_unfulfilled(fulfillment_order_id: str, body: ResetIn | None = None) -> dict[str, Any]:
        """After a cancellation request the service never answered: the lines back to OPEN (the
        timeline warns that the service may still ship them)."""
        note = body.note if body else ""
        with refusals():
            fo = await actions.reset_to_unfulfilled(fulfillment, known_fo(fulfillment_order_id), note)
        return fulfillment_order_view(fo)

    # --- fulfillments -------------------------------------------------------------------

    @router.get(
        "/fulfillments/{fulfillment_id}", **shows(FulfillmentSnapshot), dependencies=[READ], tags=["fulfillments"]
    )
    async def get_fulfillment(fulfillment_id: str) -> dict[str, Any]:
        return fulfillment_view(await holding(fulfillment_id), fulfillment_id)

    @router.post(
        "/fulfillments/{fulfillment_id}/tracking",
        **shows(FulfillmentSnapshot),
        dependencies=[WRITE],
        tags=["fulfillments"],
    )
    async def update_tracking(fulfillment_id: str, body: TrackingUpdateIn) -> dict[str, Any]:
        """Add or change the shipment's tracking; it replaces what was there."""
        fo = await holding(fulfillment_id)
        with refusals():
            saved = await actions.update_tracking(
                fulfillment, fo.id, fulfillment_id, body.tracking(), body.notify_customer
            )
        return fulfillment_view(saved, fulfillment_id)

    @router.post(
        "/fulfillments/{fulfillment_id}/void-label",
        **shows(FulfillmentSnapshot),
        dependencies=[WRITE],
        tags=["fulfillments"],
    )
    async def void_label(fulfillment_id: str) -> dict[str, Any]:
        fo = await holding(fulfillment_id)
        with refusals():
            saved = await actions.void_label(fulfillment, fo.id, fulfillment_id)
        return fulfillment_view(saved, fulfillment_id)

    @router.post(
        "/fulfillments/{fulfillment_id}/cancel", **shows(ShipmentView), dependencies=[WRITE], tags=["fulfillments"]
    )
    async def cancel_fulfillment(fulfillment_id: str) -> dict[str, Any]:
        """Undo a shipment: its lines go back to unfulfilled and their stock back to reserved."""
        fo = await holding(fulfillment_id)
        with refusals():
            saved = await actions.cancel_fulfillment(fulfillment, fo.id, fulfillment_id)
        return {**fulfillment_view(saved, fulfillment_id), "fulfillment_order": fulfillment_order_view(saved)}

    return router


def known_fo(fulfillment_order_id: str) -> str:
    return known_id("fulfillment order", fulfillment_order_id)


def _newest_fulfillment(before: FulfillmentOrder, after: FulfillmentOrder) -> dict[str, Any]:
    """The fulfillment a shipment made (the latest one, when the request was a repeat)."""
    new_ids = [fid for fid in after.fulfillments if fid not in before.fulfillments]
    newest = new_ids[-1] if new_ids else max(after.fulfillments.values(), key=lambda f: f.created_at).id
    return fulfillment_view(after, newest)
