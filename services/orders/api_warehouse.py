"""HTTP routes of the warehouse's day on orders: the waiting flag, comments, custom statuses and
editing an order (its lines and shipping address). Same conventions as services/orders/api.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.orders import domain
from services.orders.api import (
    MAX_LINES,
    AddressIn,
    CustomerIn,
    CustomStatusView,
    LineItemIn,
    OrderView,
    invalid,
    known_id,
    shown,
)
from services.orders.application import Orders
from services.orders.custom_statuses import CustomStatuses, UnknownStatus
from services.orders.domain import Address, NewLine, OrderEdit
from shared.auth import requires
from shared.catalog import Customer
from shared.events import current_actor
from shared.http import ApiError, NotFound, RequestBody

CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
StatusCode = Annotated[
    str, Field(min_length=1, max_length=64, pattern=CODE_PATTERN, description="e.g. awaiting-customer")
]
StatusName = Annotated[str, Field(min_length=1, max_length=100)]


class WaitingIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"waiting": True}]})
    waiting: StrictBool


class CommentIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Customer asked for gift wrapping."}]})
    multi_line_fields = frozenset({"text"})
    text: Annotated[str, Field(min_length=1, max_length=5_000)]


class CustomStatusIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code": "awaiting-customer", "name": "Awaiting customer"}]}
    )
    code: StatusCode
    name: StatusName


class OrderCustomStatusIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "awaiting-customer"}]})
    code: Annotated[StatusCode | None, Field(description="null clears it")]


class EditedLineIn(LineItemIn):
    id: Annotated[str | None, Field(max_length=64, description="the existing line this is; omit: by sku, or new")] = (
        None
    )


class OrderEditIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"line_items": [{"sku": "TSHIRT-M", "title": "T-shirt, medium", "quantity": 1, "unit_price": "199.00"}]}
            ]
        }
    )
    line_items: Annotated[list[EditedLineIn], Field(min_length=1, max_length=MAX_LINES)] | None = None
    shipping_address: AddressIn | None = None
    customer: Annotated[
        CustomerIn | None, Field(description="the buyer: a draft given one becomes an order; never removed")
    ] = None


class CustomStatusList(BaseModel):
    items: list[CustomStatusView]


def statuses_view(statuses: CustomStatuses) -> CustomStatusList:
    return CustomStatusList(
        items=[CustomStatusView(code=code, name=name) for code, name in sorted(statuses.names.items())]
    )


def build_warehouse_router(orders: Orders) -> APIRouter:
    router = APIRouter(tags=["orders"])

    @router.put("/orders/{order_id}/waiting", dependencies=[requires("orders:write")])
    async def set_waiting(order_id: str, body: WaitingIn) -> OrderView:
        """Keep the order out of the pack run until cleared (not a hold: nothing is wrong);
        emits order.waiting_changed when it changes."""
        return await shown(orders, orders.set_waiting(known_id(order_id), body.waiting))

    @router.post("/orders/{order_id}/comments", status_code=201, dependencies=[requires("orders:write")])
    async def add_comment(order_id: str, body: CommentIn) -> OrderView:
        """A merchant's note on the order; its words are found by GET /orders?q=."""
        return await shown(orders, orders.comment(known_id(order_id), body.text, current_actor()))

    @router.put("/orders/{order_id}/custom-status", dependencies=[requires("orders:write")])
    async def set_custom_status(order_id: str, body: OrderCustomStatusIn) -> OrderView:
        try:
            return await shown(orders, orders.set_custom_status(known_id(order_id), body.code))
        except UnknownStatus as exc:
            raise _unknown_status(exc) from None

    @router.patch("/orders/{order_id}", dependencies=[requires("orders:write")])
    async def edit_order(order_id: str, body: OrderEditIn) -> OrderView:
        """Edit a draft or an order placed or in packing: the full new `line_items` (a line with an
        existing line's `id`, or else its sku, is that line), the `shipping_address` and/or the
        `customer` (a draft given its customer becomes an order, which the pack run packs). Emits
        order.edited with the whole new order; 409 once the order shipped, or when the edit would
        touch something shipped."""
        fields = body.model_fields_set
        if not fields & {"line_items", "shipping_address", "customer"}:
            detail = {"field": "body", "reason": "give line_items, shipping_address and/or customer"}
            raise ApiError(422, "invalid_request", "invalid request: body", [detail])
        if "customer" in fields and body.customer is None:
            detail = {"field": "customer", "reason": "a customer cannot be removed: an order does not become a draft"}
            raise ApiError(422, "invalid_request", "invalid request: customer", [detail])
        lines = None
        if body.line_items is not None:
            lines = tuple(
                NewLine.model_validate({**line.model_dump(), "id": line.id or ""}) for line in body.line_items
            )
        address = Address(**body.shipping_address.model_dump()) if body.shipping_address is not None else None
        customer = Customer(**body.customer.model_dump()) if body.customer is not None else None
        change = OrderEdit(
            line_items=lines, shipping_address=address, address_given="shipping_address" in fields, customer=customer
        )
        try:
            return await shown(orders, orders.edit(known_id(order_id), change))
        except domain.InvalidOrder as exc:
            raise invalid(exc.problems) from None

    @router.get("/custom-statuses", dependencies=[requires("orders:read")])
    async def list_statuses() -> CustomStatusList:
        return statuses_view(await orders.statuses.all())

    @router.post("/custom-statuses", status_code=201, dependencies=[requires("orders:write")])
    async def define_status(body: CustomStatusIn) -> CustomStatusList:
        """A status of the merchant's own; a code taken already is 409."""
        return statuses_view(await orders.statuses.define(body.code, body.name))

    @router.put("/custom-statuses/{code}", dependencies=[requires("orders:write")])
    async def rename_status(code: str, body: CustomStatusIn) -> CustomStatusList:
        """Rename a status: every order with it shows the new name, past ones included."""
        try:
            return statuses_view(await orders.statuses.rename(code, body.code, body.name))
        except UnknownStatus as exc:
            raise _unknown_status(exc) from None

    return router


def _unknown_status(exc: UnknownStatus) -> NotFound:
    return NotFound("custom status", exc.code)
