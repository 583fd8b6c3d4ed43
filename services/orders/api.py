"""HTTP routes of the orders service: translate a request into a rule, answer with the order.

Request models check the shape (types, sizes, formats) and name the field that is wrong;
the merchant-facing rules live in domain.py. Unknown ids are 404, state conflicts 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AfterValidator, EmailStr, Field

from services.orders import domain, listing
from shared.auth import requires
from shared.catalog import DisplayFulfillmentStatus, FinancialStatus
from shared.clock import now_iso
from shared.http import ApiError, Conflict, Identifier, NotFound, RequestBody
from shared.idempotency import derived_id
from shared.store import AggregateStore, Change, Document
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
    customer: CustomerIn
    shipping_address: AddressIn | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. SEK")]
    financial_status: Literal["pending", "paid"] = "pending"
    post_purchase_pending: Annotated[bool, Field(strict=True)] = False
    line_items: Annotated[list[LineItemIn], Field(min_length=1, max_length=MAX_LINES)]


class CancelIn(RequestBody):
    refund: domain.Refund = Field(description="now: refund a paid order now; later / none: do not refund now")
    restock: Annotated[bool, Field(strict=True)]
    notify_customer: Annotated[bool, Field(strict=True)] = False
    reason: domain.CancelReason


# Fields of the stored order that are bookkeeping, not part of what the API shows.
HIDDEN = frozenset(
    {"fulfillment_orders", "fulfill_by_sort", "version", domain.TIMELINE_NOTES, *domain.LIST_KEYS.values()}
)


def order_view(order: Document) -> dict[str, Any]:
    """The order as the API shows it: timeline newest first, no internal bookkeeping."""
    view = {k: v for k, v in order.items() if k not in HIDDEN}
    view["timeline"] = list(reversed(domain.timeline_of(order)))
    view["fulfillment_orders"] = list(order.get("fulfillment_orders", {}).values())
    return view


def build_router(orders: AggregateStore) -> APIRouter:
    router = APIRouter(tags=["orders"])

    async def load(order_id: str) -> Document:
        order = await orders.get(_known_id(order_id))
        if order is None:
            raise NotFound("order", order_id)
        return order

    async def change(order_id: str, rule: Callable[[Document], Change | None]) -> dict[str, Any]:
        """Apply a rule to an existing order; a rule violation is a conflict with its reason."""
        await load(order_id)
        try:
            saved = await orders.apply(order_id, rule, missing=NotFound("order", order_id))
        except domain.OrderRuleViolation as exc:
            raise Conflict(str(exc)) from None
        return order_view(saved or await load(order_id))

    @router.post("/orders", status_code=201, dependencies=[requires("orders:write")])
    async def create_order(body: OrderIn) -> dict[str, Any]:
        order_id = derived_id("order") or str(uuid.uuid4())
        try:
            placed = domain.place(body.model_dump(mode="json"), now_iso(), order_id)
        except domain.InvalidOrder as exc:
            raise _invalid(exc.problems) from None
        # A retry of a keyed request that crashed after this write finds the order it created.
        saved = await orders.create(order_id, placed)
        return order_view(saved or await load(order_id))

    @router.get("/orders/{order_id}", dependencies=[requires("orders:read")])
    async def get_order(order_id: str) -> dict[str, Any]:
        return order_view(await load(order_id))

    @router.get("/orders", dependencies=[requires("orders:read")])
    async def list_orders(
        financial_status: FinancialStatus | None = None,
        fulfillment_status: DisplayFulfillmentStatus | None = None,
        sort: listing.OrderSort = "fulfill_by",
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
    ) -> dict[str, Any]:
        """Orders by earliest fulfill-by deadline (those without one last), or by creation time.

        Pages with limit/offset, or with the cursor each page returns (`next_cursor`, null on the
        last page) passed back as `after`: a cursor page costs the same however deep it is.
        `total` counts every order matching the filters, on a page without `after` (the first);
        a cursor page leaves it null, as counting is the one part of a page whose cost grows with
        the orders stored."""
        filters: Document = {}
        if financial_status:
            filters["financial_status"] = {"$eq": financial_status.value}
        if fulfillment_status:
            filters["fulfillment_status"] = {"$eq": fulfillment_status.value}
        if after is not None and offset:
            detail = {"field": "query.offset", "reason": "use either offset or after, not both"}
            raise ApiError(422, "invalid_request", "invalid request: query.offset", [detail])
        try:
            page = listing.page(filters, sort, after)
        except listing.InvalidCursor as exc:
            raise ApiError(422, "invalid_request", "invalid request: query.after",
                           [{"field": "query.after", "reason": str(exc)}]) from None  # fmt: skip
        found = await orders.find(page.query, sort=page.sort, skip=offset, limit=limit + 1)
        total = None
        if after is None:
            # Not count_documents: the embedded store runs its $group in Python over every order.
            counted = await (await orders.collection.aggregate([{"$match": filters}, {"$count": "n"}])).to_list()
            total = counted[0]["n"] if counted else 0
        return {
            "items": [order_view(o) for o in found[:limit]],
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_cursor": listing.next_cursor(sort, found, limit),
        }

    @router.post("/orders/{order_id}/pay", dependencies=[requires("orders:write")])
    async def pay_order(order_id: str) -> dict[str, Any]:
        """Paying a paid order again changes nothing and emits nothing."""
        return await change(order_id, lambda order: domain.pay(order, now_iso()))

    @router.post("/orders/{order_id}/cancel", dependencies=[requires("orders:write")])
    async def cancel_order(order_id: str, body: CancelIn) -> dict[str, Any]:
        """Cancel; a refund is only issued for a paid order. A fully fulfilled order is 409."""
        return await change(
            order_id,
            lambda order: domain.cancel(
                order, refund=body.refund, restock=body.restock, notify_customer=body.notify_customer,
                reason=body.reason, now=now_iso(),
            ),
        )  # fmt: skip

    @router.post("/orders/{order_id}/post-purchase/complete", dependencies=[requires("orders:write")])
    async def complete_post_purchase(order_id: str) -> dict[str, Any]:
        """The post-purchase upsell window closed: announce it so fulfillment can proceed."""
        return await change(order_id, lambda order: domain.complete_post_purchase(order, now_iso()))

    return router


def _known_id(order_id: str) -> str:
    """Order ids are UUIDs; anything else cannot be an order (404, without a lookup)."""
    try:
        if str(uuid.UUID(order_id)) == order_id:
            return order_id
    except ValueError:
        pass
    raise NotFound("order", order_id if len(order_id) <= 64 else order_id[:64] + "…")


def _invalid(problems: list[domain.Problem]) -> ApiError:
    details = [{"field": p.field, "reason": p.reason} for p in problems]
    return ApiError(422, "invalid_request", "invalid request: " + ", ".join(p.field for p in problems[:5]), details)
