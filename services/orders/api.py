"""HTTP routes of the orders service: translate a request into a rule, answer with the order."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, model_validator

from services.orders import domain
from shared.catalog import DisplayFulfillmentStatus, FinancialStatus
from shared.http import ApiError, Conflict, NotFound
from shared.store import AggregateStore, Document, now_iso

Text = Annotated[str, Field(min_length=1, max_length=255)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(Strict):
    email: EmailStr
    name: Text


class AddressIn(Strict):
    name: Text | None = None
    address1: Text | None = None
    address2: Annotated[str, Field(max_length=255)] | None = None
    city: Text | None = None
    province: Annotated[str, Field(max_length=255)] | None = None
    zip: Annotated[str, Field(max_length=32)] | None = None
    country_code: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None


class LineItemIn(Strict):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    title: Text
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Annotated[Decimal, Field(ge=0, le=Decimal("1e9"), max_digits=14, decimal_places=4)]
    requires_shipping: bool = True
    digital_asset_url: HttpUrl | None = None

    @model_validator(mode="after")
    def digital_lines_have_an_asset_and_no_shipping(self) -> LineItemIn:
        if self.digital_asset_url is not None and self.requires_shipping:
            raise ValueError("a line with a digital_asset_url is digital and must have requires_shipping false")
        if not self.requires_shipping and self.digital_asset_url is None:
            raise ValueError("a line that requires no shipping is digital and needs a digital_asset_url")
        return self


class OrderIn(Strict):
    customer: CustomerIn
    shipping_address: AddressIn | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. SEK")]
    financial_status: Literal["pending", "paid"] = "pending"
    post_purchase_pending: bool = False
    line_items: Annotated[list[LineItemIn], Field(min_length=1, max_length=250)]

    @model_validator(mode="after")
    def shipped_lines_need_an_address(self) -> OrderIn:
        if any(line.requires_shipping for line in self.line_items) and self.shipping_address is None:
            raise ValueError("shipping_address is required when a line requires shipping")
        return self


def order_view(order: Document) -> dict[str, Any]:
    """The order as the API shows it: timeline newest first, no internal bookkeeping."""
    view = {k: v for k, v in order.items() if k not in ("fulfillment_orders", "version")}
    view["timeline"] = list(reversed(order.get("timeline", [])))
    view["fulfillment_orders"] = list(order.get("fulfillment_orders", {}).values())
    return view


def build_router(orders: AggregateStore) -> APIRouter:
    router = APIRouter(tags=["orders"])

    async def load(order_id: str) -> Document:
        order = await orders.get(order_id)
        if order is None:
            raise NotFound("order", order_id)
        return order

    @router.post("/orders", status_code=201)
    async def create_order(body: OrderIn) -> dict[str, Any]:
        change = domain.place(body.model_dump(mode="json"), now_iso())
        saved = await orders.apply(change.document["id"], lambda _: change)
        assert saved is not None
        return order_view(saved)

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, Any]:
        return order_view(await load(order_id))

    @router.get("/orders")
    async def list_orders(
        financial_status: FinancialStatus | None = None,
        fulfillment_status: DisplayFulfillmentStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=250)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        query: Document = {}
        if financial_status:
            query["financial_status"] = financial_status.value
        if fulfillment_status:
            query["fulfillment_status"] = fulfillment_status.value
        found = await orders.find(query, sort=[("created_at", -1)], skip=offset, limit=limit)
        return {"items": [order_view(o) for o in found]}

    @router.post("/orders/{order_id}/pay")
    async def pay_order(order_id: str) -> dict[str, Any]:
        await load(order_id)
        try:
            saved = await orders.apply(order_id, lambda order: domain.pay(_exists(order), now_iso()))
        except domain.OrderRuleViolation as exc:
            raise Conflict(str(exc)) from None
        return order_view(saved or await load(order_id))

    return router


def _exists(order: Document | None) -> Document:
    if order is None:
        raise ApiError(404, "not_found", "order does not exist")
    return order
