"""HTTP routes of the orders service: translate a request into a rule, answer with the order.

Request models check the shape (types, sizes, formats) and name the field that is wrong;
the merchant-facing rules live in the domain, the use cases in application.py. Unknown ids are
404, state conflicts 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from services.orders import domain, listing
from services.orders.application import Orders, UnknownOrder
from services.orders.domain import NewOrder, Order
from shared.auth import requires
from shared.catalog import (
    Customer,
    DisplayFulfillmentStatus,
    FinancialStatus,
    FulfillmentOrderSnapshot,
    LineItem,
    WarehouseStatus,
)
from shared.clock import iso
from shared.http import ApiError, Identifier, NotFound, RequestBody
from shared.idempotency import derived_id
from shared.text import FROM_THE_STORE
from shared.urls import AssetUrl

MAX_LINES = 250

Text = Annotated[str, Field(min_length=1, max_length=255)]
OptionalText = Annotated[str, Field(max_length=255)]
Quantity = Annotated[int, Field(strict=True, gt=0, le=100_000)]


def _plain_decimal(value: Decimal) -> Decimal:
    """Money as the merchant wrote it, minus exponent notation, negative zero and noise digits."""
    value = Decimal(format(value, "f")) + 0
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        value = value.quantize(Decimal("0.0001"))
    return value


Money = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1000000000"), max_digits=14, decimal_places=4, description="decimal string, e.g. 99.50"),
    AfterValidator(_plain_decimal),
]


class CustomerIn(RequestBody):
    email: EmailStr
    name: Text


class AddressIn(RequestBody):
    name: OptionalText | None = None
    address1: OptionalText | None = None
    address2: OptionalText | None = None
    city: OptionalText | None = None
    province: OptionalText | None = None
    zip: Annotated[str, Field(max_length=32)] | None = None
    country_code: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. SE")] | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None


class LineItemIn(RequestBody):
    sku: Identifier
    title: Text
    quantity: Quantity
    unit_price: Money
    requires_shipping: Annotated[bool, Field(strict=True)] = True
    digital_asset_url: Annotated[AssetUrl, Field(description="digital downloads and gift cards")] | None = None


class OrderIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
                    "shipping_address": {
                        "name": "Ada Lovelace",
                        "address1": "Drottninggatan 1",
                        "city": "Stockholm",
                        "zip": "111 51",
                        "country_code": "SE",
                    },
                    "currency": "SEK",
                    "financial_status": "paid",
                    "line_items": [
                        {"sku": "TSHIRT-M", "title": "T-shirt, medium", "quantity": 2, "unit_price": "199.00"}
                    ],
                }
            ]
        }
    )
    customer: Annotated[CustomerIn | None, Field(description="omit for a draft (no customer details yet)")] = None
    shipping_address: AddressIn | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. SEK")]
    financial_status: Literal["pending", "paid"] = "pending"
    post_purchase_pending: Annotated[bool, Field(strict=True)] = False
    line_items: Annotated[list[LineItemIn], Field(min_length=1, max_length=MAX_LINES)]


class CancelIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"refund": "now", "restock": True, "notify_customer": True, "reason": "customer"}]
        }
    )
    refund: domain.Refund = Field(description="now: refund a paid order now; later / none: do not refund now")
    restock: Annotated[bool, Field(strict=True)]
    notify_customer: Annotated[bool, Field(strict=True)] = False
    reason: domain.CancelReason


class CustomStatusView(BaseModel):
    code: str
    name: str = Field(description="its name now (renaming a status renames it on every order)")


class TimelineEntryView(BaseModel):
    at: str
    recorded_at: str | None = None
    type: str = Field(description="the event's type, e.g. order.paid")
    source: str
    event_id: str
    actor: str | None = None
    message: str
    details: dict[str, domain.TimelineDetail] = {}


class OrderView(BaseModel):
    """An order as the API shows it (order_view): its timeline newest first, its fulfillment
    orders as fulfillment last told them."""

    id: str
    number: int | None = Field(description="the shop's order number (#1001): null until it is numbered")
    customer: Customer
    shipping_address: domain.Address | None
    currency: str
    financial_status: FinancialStatus
    post_purchase_pending: bool
    line_items: list[LineItem]
    fulfillment_status: DisplayFulfillmentStatus
    warehouse_status: WarehouseStatus
    fulfill_by: str | None
    created_at: str
    updated_at: str
    paid_at: str | None
    cancelled_at: str | None
    cancel_reason: domain.CancelReason | None
    cancellation: domain.Cancellation | None
    waiting: bool
    custom_status: CustomStatusView | None
    comments: list[domain.Comment]
    timeline: list[TimelineEntryView]
    fulfillment_orders: list[FulfillmentOrderSnapshot]


class OrderPage(BaseModel):
    items: list[OrderView]
    total: int | None = Field(description="every order matching the filters; null on a cursor page or a search")
    limit: int
    offset: int
    next_cursor: str | None = Field(description="pass as `after` for the next page; null on the last")


_SHOWN_APART = {"warehouse_status", "custom_status", "timeline", "fulfillment_orders"}
_AS_STORED = [name for name in OrderView.model_fields if name not in _SHOWN_APART]
"""The order's own fields its view shows as they are."""


def order_view(order: Order, names: Mapping[str, str] | None = None) -> OrderView:
    """The order as the API shows it: timeline newest first (notes included), its fulfillment
    orders as a list, its warehouse status, its custom status with the name it has now (`names`,
    by code), no internal bookkeeping. Built from the typed order, whose values were checked on
    the way in (FROM_THE_STORE)."""
    code = order.custom_status
    shown = {name: getattr(order, name) for name in _AS_STORED}
    return OrderView.model_validate(
        {
            **shown,
            "warehouse_status": domain.warehouse_status(order),
            "custom_status": None if code is None else CustomStatusView(code=code, name=(names or {}).get(code, code)),
            "timeline": [_entry_view(entry) for entry in reversed(domain.timeline(order))],
            "fulfillment_orders": list(order.fulfillment_orders.values()),
        },
        context=FROM_THE_STORE,
    )


def _entry_view(entry: domain.TimelineEntry) -> TimelineEntryView:
    """A timeline entry as the API shows it: one stored before entries had a message reads as its type."""
    return TimelineEntryView.model_validate({**asdict(entry), "message": entry.message or domain.humanised(entry.type)})


def build_router(orders: Orders) -> APIRouter:
    router = APIRouter(tags=["orders"])

    @router.post("/orders", status_code=201, dependencies=[requires("orders:write")])
    async def create_order(body: OrderIn) -> OrderView:
        """Place an order; it gets the shop's next number (`number`, shown as #1001)."""
        try:
            placed = await orders.place(
                NewOrder.model_validate(body.model_dump()), derived_id("order") or str(uuid.uuid4())
            )
        except domain.InvalidOrder as exc:
            raise invalid(exc.problems) from None
        return order_view(placed)

    @router.get("/orders/{order_id}", dependencies=[requires("orders:read")])
    async def get_order(order_id: str) -> OrderView:
        return await shown(orders, orders.get(known_id(order_id)))

    @router.get("/orders", dependencies=[requires("orders:read")])
    async def list_orders(
        financial_status: FinancialStatus | None = None,
        fulfillment_status: DisplayFulfillmentStatus | None = None,
        warehouse_status: WarehouseStatus | None = None,
        custom_status: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        q: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=200,
                description="number (#1001), customer name or email, sku, comment "
                "words: an order matches when it has every word",
            ),
        ] = None,
        created_from: AwareDatetime | None = None,
        created_to: AwareDatetime | None = None,
        total_min: Annotated[Decimal | None, Query(ge=0, le=Decimal("1e12"))] = None,
        total_max: Annotated[Decimal | None, Query(ge=0, le=Decimal("1e12"))] = None,
        sort: Annotated[listing.OrderSort | None, Query(description="default fulfill_by; -created_at with q")] = None,
        limit: Annotated[int, Query(ge=1, le=250)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        after: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=1024,
                description="keyset pagination: the next_cursor of the previous page (same sort); the page "
                "starts after its last order, however many orders come and go meanwhile. Not with offset.",
            ),
        ] = None,
    ) -> OrderPage:
        """Orders by earliest fulfill-by deadline (those without one last), or by creation time.

        Pages with limit/offset, or with the cursor each page returns (`next_cursor`, null on the
        last page) passed back as `after`: a cursor page costs the same however deep it is.
        `total` counts every order matching the filters, on a page without `after` (the first);
        a cursor page leaves it null, as counting is the one part of a page whose cost grows with
        the orders stored.

        A search (`q`, or filters beyond what one index holds: custom or warehouse status with
        another status filter, a total range, a created-at range with sort=fulfill_by) reads at
        most a bounded number of orders a request: its `total` is null, it pages with `after`
        only, and a page may hold fewer than `limit` orders with a `next_cursor` to go on."""
        if after is not None and offset:
            detail = {"field": "query.offset", "reason": "use either offset or after, not both"}
            raise ApiError(422, "invalid_request", "invalid request: query.offset", [detail])
        wanted = listing.OrderFilters(
            financial_status=financial_status, fulfillment_status=fulfillment_status,
            warehouse_status=warehouse_status, custom_status=custom_status, q=q,
            created_from=_stored_time(created_from), created_to=_stored_time(created_to),
            total_min=total_min, total_max=total_max,
        )  # fmt: skip
        order_by = sort or ("-created_at" if q else "fulfill_by")
        try:
            page = await orders.list(wanted, sort=order_by, after=after, offset=offset, limit=limit)
        except listing.InvalidCursor as exc:
            raise ApiError(422, "invalid_request", "invalid request: query.after",
                           [{"field": "query.after", "reason": str(exc)}]) from None  # fmt: skip
        except listing.Unsupported as exc:
            raise ApiError(422, "invalid_request", f"invalid request: {exc.field}",
                           [{"field": exc.field, "reason": str(exc)}]) from None  # fmt: skip
        names = await orders.statuses.names() if any(o.custom_status for o in page.items) else {}
        return OrderPage(
            items=[order_view(o, names) for o in page.items],
            total=page.total, limit=limit, offset=offset, next_cursor=page.next_cursor,
        )  # fmt: skip

    @router.post("/orders/{order_id}/pay", dependencies=[requires("orders:write")])
    async def pay_order(order_id: str) -> OrderView:
        """Paying a paid order again changes nothing and emits nothing."""
        return await shown(orders, orders.pay(known_id(order_id)))

    @router.post("/orders/{order_id}/cancel", dependencies=[requires("orders:write")])
    async def cancel_order(order_id: str, body: CancelIn) -> OrderView:
        """Cancel; a refund is only issued for a paid order. A fully fulfilled order is 409."""
        return await shown(orders, orders.cancel(known_id(order_id), refund=body.refund, restock=body.restock,
                                                 notify_customer=body.notify_customer, reason=body.reason))  # fmt: skip

    @router.post("/orders/{order_id}/post-purchase/complete", dependencies=[requires("orders:write")])
    async def complete_post_purchase(order_id: str) -> OrderView:
        """The post-purchase upsell window closed: announce it so fulfillment can proceed."""
        return await shown(orders, orders.complete_post_purchase(known_id(order_id)))

    return router


async def shown(orders: Orders, action: Awaitable[Order]) -> OrderView:
    """The order an action leaves, as the API shows it; an unknown order is 404 (a rule's refusal
    is a 409, by shared.http)."""
    try:
        order = await action
    except UnknownOrder as exc:
        raise NotFound("order", exc.order_id) from None
    return order_view(order, await orders.statuses.names() if order.custom_status else {})


def _stored_time(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def known_id(order_id: str) -> str:
    """Order ids are UUIDs; anything else cannot be an order (404, without a lookup)."""
    try:
        if str(uuid.UUID(order_id)) == order_id:
            return order_id
    except ValueError:
        pass
    raise NotFound("order", order_id if len(order_id) <= 64 else order_id[:64] + "…")


def invalid(problems: list[domain.Problem]) -> ApiError:
    details = [{"field": p.field, "reason": p.reason} for p in problems]
    return ApiError(422, "invalid_request", "invalid request: " + ", ".join(p.field for p in problems[:5]), details)
