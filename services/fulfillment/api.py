"""HTTP routes of the fulfillment service: translate a request into a rule, answer with the result.

404 for unknown ids, 409 with the reason when the rule refuses the transition in the current
state, 422 naming the field when the request names lines or values that cannot be.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, Field, StrictBool, StrictInt

from services.fulfillment import listing
from services.fulfillment.bulk import BulkJobs
from services.fulfillment.domain import bulk_job as bulk_rules
from services.fulfillment.domain import fulfillment_order as fo_rules
from services.fulfillment.domain.bulk_job import MAX_FULFILLMENT_ORDERS, BulkAction
from services.fulfillment.domain.fulfillment_order import (
    FulfillmentRequest,
    InvalidRequest,
    LineQuantity,
    TransitionRefused,
)
from services.fulfillment.service import Fulfillment
from services.fulfillment.store import PostPurchaseHold, ShopSettings, SweepInterval
from shared.aggregates import Change, Document
from shared.auth import Caller, reach_of, requires
from shared.catalog import (
    FulfillmentOrderStatus,
    FulfillmentServiceShipment,
    HoldReason,
    LabelStatus,
    ShippedLine,
    Tracking,
)
from shared.clock import iso, now_iso
from shared.http import ApiError, Conflict, NotFound, RequestBody
from shared.urls import TrackingUrl

INTERNAL_FIELDS = {
    "version",
    "order",
    "sort_fulfill_by",
    "upsell_release_at",
    "upsell_release_epoch",
    "opens_at_epoch",
    "sort_key",
    "out_of_stock",
    "skus",
    "reroute_pending",
}
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class LineIn(RequestBody):
    line_item_id: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: Annotated[StrictInt, Field(gt=0, le=10_000)]


class TrackingIn(RequestBody):
    numbers: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=50)] = Field(
        default_factory=list
    )
    company: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    url: TrackingUrl | None = None
    urls: Annotated[list[TrackingUrl], Field(max_length=50)] = Field(default_factory=list)

    def tracking(self) -> Tracking:
        urls = [str(url) for url in ([self.url] if self.url else []) + self.urls]
        return Tracking(numbers=self.numbers, company=self.company, urls=urls)


class FulfillmentIn(RequestBody):
    line_items: Annotated[list[LineIn], Field(max_length=250)] | None = Field(
        None, description="lines and quantities to ship; leave out to ship everything that remains"
    )
    tracking: TrackingIn = TrackingIn()
    notify_customer: StrictBool = False
    label: Literal["PURCHASED", "NONE"] = Field("NONE", description="PURCHASED: a shipping label was bought")


class TrackingUpdateIn(TrackingIn):
    notify_customer: StrictBool = False


class HoldIn(RequestBody):
    reason: HoldReason
    note: Annotated[str, Field(max_length=1000)] = ""


class ReleaseIn(RequestBody):
    reason: HoldReason | None = Field(None, description="release only this hold; leave out to release all")


class MoveIn(RequestBody):
    location_id: Annotated[str, Field(min_length=1, max_length=100)]


class FulfillByIn(RequestBody):
    fulfill_by: AwareDatetime | None = Field(description="RFC 3339 with a time zone; null clears the deadline")


class ScheduleIn(RequestBody):
    fulfill_at: AwareDatetime


class SubmitIn(RequestBody):
    multi_line_fields = frozenset({"message"})

    message: Annotated[str, Field(max_length=1000)] = ""


class CancellationRequestIn(RequestBody):
    multi_line_fields = frozenset({"message"})

    message: Annotated[str, Field(max_length=1000)] = ""


class SettingsIn(RequestBody):
    """Only the fields given change; each within the bounds of the stored settings."""

    auto_fulfill: StrictBool | None = None
    sweep_interval_seconds: SweepInterval | None = None
    post_purchase_hold_seconds: PostPurchaseHold | None = None


class BulkJobIn(RequestBody):
    """One action on many fulfillment orders; the action's parameters sit beside it:
    fulfill (notify_customer, tracking_company), hold (reason, note), release_hold (reason: only
    that hold), move (location_id)."""

    action: BulkAction
    fulfillment_order_ids: Annotated[
        list[Annotated[str, Field(pattern=SAFE_ID.pattern)]], Field(min_length=1, max_length=MAX_FULFILLMENT_ORDERS)
    ]
    notify_customer: StrictBool | None = None
    tracking_company: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    reason: HoldReason | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None
    location_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    def parameters(self) -> dict[str, Any]:
        """The parameters the request gave (null counts as not given)."""
        given = self.model_dump(mode="json", exclude={"action", "fulfillment_order_ids"}, exclude_none=True)
        return {name: value for name, value in given.items() if name in self.model_fields_set}


def invalid_field(field: str, reason: str) -> ApiError:
    """422 in the same shape as a request validation error: which field, and why."""
    return ApiError(422, "invalid_request", f"invalid request: {field}", [{"field": field, "reason": reason}])


def fulfillment_order_view(fo: Document) -> dict[str, Any]:
    view = {k: v for k, v in fo.items() if k not in INTERNAL_FIELDS}
    view["fulfillments"] = sorted(fo.get("fulfillments", {}).values(), key=lambda f: (f["created_at"], f["id"]))
    return view


def _newest_fulfillment(before: Document, after: Document) -> dict[str, Any]:
    new_ids = [fid for fid in after["fulfillments"] if fid not in before["fulfillments"]]
    if new_ids:
        return dict(after["fulfillments"][new_ids[-1]])
    return dict(max(after["fulfillments"].values(), key=lambda f: f["created_at"]))


READ = requires("fulfillment:read")
WRITE = requires("fulfillment:write")
SEEN_BY_SERVICES = requires("fulfillment:read", fulfillment_service=True)
SHIPPED_BY_SERVICES = requires("fulfillment:write", fulfillment_service=True)


def build_router(fulfillment: Fulfillment) -> APIRouter:
    router = APIRouter()
    fulfillment_orders = fulfillment.fulfillment_orders

    async def load(fulfillment_order_id: str) -> Document:
        found = await fulfillment_orders.get(fulfillment_order_id) if SAFE_ID.match(fulfillment_order_id) else None
        if found is None:
            raise NotFound("fulfillment order", fulfillment_order_id)
        return found

    async def holding(fulfillment_id: str) -> Document:
        """The fulfillment order a fulfillment (shipment) belongs to."""
        found = await fulfillment.fulfillment_order_holding(fulfillment_id) if SAFE_ID.match(fulfillment_id) else None
        if found is None:
            raise NotFound("fulfillment", fulfillment_id)
        return found

    async def act(fulfillment_order_id: str, rule: Callable[[Document], Change | None]) -> Document:
        await load(fulfillment_order_id)
        try:
            saved = await fulfillment.act(fulfillment_order_id, rule)
        except TransitionRefused as refused:
            raise Conflict(str(refused)) from None
        except LookupError as missing:
            raise ApiError(404, "not_found", str(missing)) from None
        except InvalidRequest as invalid:
            raise invalid_field(invalid.field, invalid.reason) from None
        return saved or await load(fulfillment_order_id)

    # --- fulfillment orders -------------------------------------------------------------

    @router.get("/fulfillment-orders", dependencies=[SEEN_BY_SERVICES], tags=["fulfillment orders"])
    async def list_fulfillment_orders(
        who: Caller,
        order_id: str | None = None,
        status: FulfillmentOrderStatus | None = None,
        location_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=250)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        after: Annotated[
            str | None,
            Query(max_length=400, description="the `next_cursor` of the previous page: the page after it"),
        ] = None,
    ) -> dict[str, Any]:
        """Sorted by fulfill-by deadline, soonest first; those without one come last. A fulfillment
        service's token lists only the fulfillment orders at the locations it runs.

        Pages: `next_cursor` is where the next page starts (null on the last page); pass it as
        `after` to get that page. Unlike `offset`, a cursor costs the same however deep the page,
        and a page never repeats or skips a fulfillment order when others are added meanwhile."""
        try:
            resume = listing.decode_cursor(after) if after is not None else None
        except listing.BadCursor:
            raise invalid_field("after", "not a cursor this listing returned (next_cursor)") from None
        filters = listing.Filters(
            order_id=order_id or None,
            status=status.value if status else None,
            location_id=location_id or None,
            fulfillment_services=None if who.may("fulfillment:read") else sorted(who.fulfillment_services),
        )
        found, next_cursor = await listing.page(fulfillment_orders, filters, after=resume, offset=offset, limit=limit)
        return {"items": [fulfillment_order_view(fo) for fo in found], "next_cursor": next_cursor}

    @router.get(
        "/fulfillment-orders/{fulfillment_order_id}", dependencies=[SEEN_BY_SERVICES], tags=["fulfillment orders"]
    )
    async def get_fulfillment_order(fulfillment_order_id: str, who: Caller) -> dict[str, Any]:
        fo = await load(fulfillment_order_id)
        reach_of(who, "fulfillment:read", fo.get("fulfillment_service"))
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/fulfillments",
        status_code=201,
        dependencies=[SHIPPED_BY_SERVICES],
        tags=["fulfillments"],
    )
    async def create_fulfillment(fulfillment_order_id: str, body: FulfillmentIn, who: Caller) -> dict[str, Any]:
        """Ship all remaining lines, or some (a partial shipment), with tracking if known. The
        location's fulfillment service may too (with its token), for what it was asked to ship."""
        before = await load(fulfillment_order_id)
        reach_of(who, "fulfillment:write", before.get("fulfillment_service"))
        if not who.may("fulfillment:write"):
            # The location's fulfillment service: the same rule as its `shipped` answer on Kafka.
            lines = None if body.line_items is None else [ShippedLine(**li.model_dump()) for li in body.line_items]
            shipment = FulfillmentServiceShipment(
                fulfillment_order_id=fulfillment_order_id,
                fulfillment_service=before["fulfillment_service"],
                line_items=lines,
                tracking=body.tracking.tracking(),
            )
            fo = await act(
                fulfillment_order_id, lambda current: fo_rules.shipped_by_service(current, shipment, now_iso())
            )
            return {**_newest_fulfillment(before, fo), "fulfillment_order": fulfillment_order_view(fo)}
        request = FulfillmentRequest(
            lines=None
            if body.line_items is None
            else [LineQuantity(li.line_item_id, li.quantity) for li in body.line_items],
            tracking=body.tracking.tracking(),
            notify_customer=body.notify_customer,
            label=LabelStatus(body.label),
        )
        fo = await act(fulfillment_order_id, lambda current: fo_rules.fulfil(current, request, now_iso()))
        return {**_newest_fulfillment(before, fo), "fulfillment_order": fulfillment_order_view(fo)}

    @router.post("/fulfillment-orders/{fulfillment_order_id}/hold", dependencies=[WRITE], tags=["fulfillment orders"])
    async def hold(fulfillment_order_id: str, body: HoldIn) -> dict[str, Any]:
        fo = await act(
            fulfillment_order_id, lambda current: fo_rules.place_hold(current, body.reason, body.note, now_iso())
        )
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/release-hold", dependencies=[WRITE], tags=["fulfillment orders"]
    )
    async def release_hold(fulfillment_order_id: str, body: ReleaseIn | None = None) -> dict[str, Any]:
        reason = body.reason if body else None
        fo = await act(fulfillment_order_id, lambda current: fo_rules.release_hold(current, now_iso(), reason))
        return fulfillment_order_view(fo)

    @router.post("/fulfillment-orders/{fulfillment_order_id}/move", dependencies=[WRITE], tags=["fulfillment orders"])
    async def move(fulfillment_order_id: str, body: MoveIn) -> dict[str, Any]:
        """Ship from another location: inventory reserves there and releases here."""
        current = await load(fulfillment_order_id)
        location = await fulfillment.locations.get(body.location_id)
        if location is None:
            raise invalid_field("location_id", f"no location {body.location_id!r} is known")
        stock = await fulfillment.stock.available((line["sku"] for line in current["line_items"]), [location.id])
        available = {sku: quantity for (location_id, sku), quantity in stock.items() if location_id == location.id}
        fo = await act(fulfillment_order_id, lambda doc: fo_rules.move(doc, location, available, now_iso()))
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/fulfill-by", dependencies=[WRITE], tags=["fulfillment orders"]
    )
    async def fulfill_by(fulfillment_order_id: str, body: FulfillByIn) -> dict[str, Any]:
        deadline = iso(body.fulfill_by) if body.fulfill_by else None
        fo = await act(fulfillment_order_id, lambda current: fo_rules.set_fulfill_by(current, deadline, now_iso()))
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/schedule", dependencies=[WRITE], tags=["fulfillment orders"]
    )
    async def schedule(fulfillment_order_id: str, body: ScheduleIn) -> dict[str, Any]:
        """Open only at fulfill_at (the sweep opens it then)."""
        at = iso(body.fulfill_at)
        fo = await act(fulfillment_order_id, lambda current: fo_rules.schedule(current, at, now_iso()))
        return fulfillment_order_view(fo)

    @router.post("/fulfillment-orders/{fulfillment_order_id}/open", dependencies=[WRITE], tags=["fulfillment orders"])
    async def open_now(fulfillment_order_id: str) -> dict[str, Any]:
        """Open a scheduled fulfillment order before its time."""
        fo = await act(
            fulfillment_order_id, lambda current: fo_rules.open_scheduled(current, now_iso(), due_only=False)
        )
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/submit-request", dependencies=[WRITE], tags=["fulfillment orders"]
    )
    async def submit_request(fulfillment_order_id: str, body: SubmitIn | None = None) -> dict[str, Any]:
        """Ask the location's fulfillment service to ship it."""
        message = body.message if body else ""
        fo = await act(fulfillment_order_id, lambda current: fo_rules.submit_request(current, now_iso(), message))
        return fulfillment_order_view(fo)

    @router.post(
        "/fulfillment-orders/{fulfillment_order_id}/request-cancellation",
        dependencies=[WRITE],
        tags=["fulfillment orders"],
    )
    async def request_cancellation(
        fulfillment_order_id: str, body: CancellationRequestIn | None = None
    ) -> dict[str, Any]:
        """Ask the fulfillment service to cancel what it was asked to ship; it accepts or rejects."""
        message = body.message if body else ""
        fo = await act(fulfillment_order_id, lambda current: fo_rules.request_cancellation(current, message, now_iso()))
        return fulfillment_order_view(fo)

    # --- fulfillments -------------------------------------------------------------------

    @router.get("/fulfillments/{fulfillment_id}", dependencies=[READ], tags=["fulfillments"])
    async def get_fulfillment(fulfillment_id: str) -> dict[str, Any]:
        fo = await holding(fulfillment_id)
        return dict(fo["fulfillments"][fulfillment_id])

    @router.post("/fulfillments/{fulfillment_id}/tracking", dependencies=[WRITE], tags=["fulfillments"])
    async def update_tracking(fulfillment_id: str, body: TrackingUpdateIn) -> dict[str, Any]:
        """Add or change the shipment's tracking; it replaces what was there."""
        fo = await holding(fulfillment_id)
        tracking = body.tracking()
        saved = await act(
            fo["id"],
            lambda current: fo_rules.update_tracking(
                current, fulfillment_id, tracking, body.notify_customer, now_iso()
            ),
        )
        return dict(saved["fulfillments"][fulfillment_id])

    @router.post("/fulfillments/{fulfillment_id}/void-label", dependencies=[WRITE], tags=["fulfillments"])
    async def void_label(fulfillment_id: str) -> dict[str, Any]:
        fo = await holding(fulfillment_id)
        saved = await act(fo["id"], lambda current: fo_rules.void_label(current, fulfillment_id, now_iso()))
        return dict(saved["fulfillments"][fulfillment_id])

    @router.post("/fulfillments/{fulfillment_id}/cancel", dependencies=[WRITE], tags=["fulfillments"])
    async def cancel_fulfillment(fulfillment_id: str) -> dict[str, Any]:
        """Undo a shipment: its lines go back to unfulfilled and their stock back to reserved."""
        fo = await holding(fulfillment_id)
        saved = await act(fo["id"], lambda current: fo_rules.cancel_fulfillment(current, fulfillment_id, now_iso()))
        return {**saved["fulfillments"][fulfillment_id], "fulfillment_order": fulfillment_order_view(saved)}

    # --- what routing sees ---------------------------------------------------------------

    @router.get("/routing/stock/{sku}", dependencies=[READ], tags=["routing"])
    async def routing_view(sku: str) -> dict[str, Any]:
        """The locations and the sku's available stock as routing sees them (its copy of
        inventory's events): why an order went where it went."""
        locations = sorted(await fulfillment.locations.all(), key=lambda loc: loc.rank)
        available = await fulfillment.stock.available([sku], [loc.id for loc in locations])
        return {
            "sku": sku,
            "locations": [
                {"location_id": loc.id, "name": loc.name, "priority": loc.priority, "active": loc.active,
                 "fulfillment_service": loc.fulfillment_service, "available": available.get((loc.id, sku), 0)}
                for loc in locations
            ],
        }  # fmt: skip

    # --- settings -----------------------------------------------------------------------

    @router.get("/settings", dependencies=[READ], tags=["settings"])
    async def get_settings() -> ShopSettings:
        return await fulfillment.shop_settings()

    @router.put("/settings", dependencies=[requires("settings:write")], tags=["settings"])
    async def put_settings(body: SettingsIn) -> ShopSettings:
        """Automatic or manual fulfillment, the sweep interval, the post-purchase hold limit."""
        return await fulfillment.settings.update(body.model_dump(exclude_none=True))

    return router


def build_bulk_router(bulk_jobs: BulkJobs) -> APIRouter:
    router = APIRouter()

    @router.post("/bulk-jobs", status_code=202, dependencies=[WRITE], tags=["bulk jobs"])
    async def start_bulk_job(body: BulkJobIn) -> dict[str, Any]:
        """Apply one action to up to 250 fulfillment orders in the background; follow it with
        GET /bulk-jobs/{id} (or bulk_job.progress / bulk_job.completed on fulfillment.events.v1)."""
        try:
            job = await bulk_jobs.start(body.action, body.fulfillment_order_ids, body.parameters())
        except InvalidRequest as invalid:
            raise invalid_field(invalid.field, invalid.reason) from None
        return bulk_rules.view(job)

    @router.get("/bulk-jobs/{job_id}", dependencies=[READ], tags=["bulk jobs"])
    async def get_bulk_job(job_id: str) -> dict[str, Any]:
        """Counts, and each fulfillment order's result (succeeded, or failed with the error) once it has one."""
        job = await bulk_jobs.get(job_id) if SAFE_ID.match(job_id) else None
        if job is None:
            raise NotFound("bulk job", job_id)
        return bulk_rules.view(job)

    @router.get("/bulk-jobs", dependencies=[READ], tags=["bulk jobs"])
    async def list_bulk_jobs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """The most recent first, without their per-order results."""
        return {"items": [bulk_rules.snapshot(job).model_dump(mode="json") for job in await bulk_jobs.recent(limit)]}

    return router
