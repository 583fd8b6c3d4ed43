"""HTTP routes of the fulfillment service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from shared.catalog import FulfillmentOrderStatus
from shared.http import NotFound
from shared.store import AggregateStore, Document


def fulfillment_order_view(fulfillment_order: Document) -> dict[str, Any]:
    return {k: v for k, v in fulfillment_order.items() if k != "version"}


def build_router(fulfillment_orders: AggregateStore) -> APIRouter:
    router = APIRouter(tags=["fulfillment orders"])

    @router.get("/fulfillment-orders")
    async def list_fulfillment_orders(
        order_id: str | None = None,
        status: FulfillmentOrderStatus | None = None,
        location_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=250)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        query: Document = {}
        if order_id:
            query["order_id"] = order_id
        if status:
            query["status"] = status.value
        if location_id:
            query["location_id"] = location_id
        found = await fulfillment_orders.find(query, sort=[("created_at", 1)], skip=offset, limit=limit)
        return {"items": [fulfillment_order_view(fo) for fo in found]}

    @router.get("/fulfillment-orders/{fulfillment_order_id}")
    async def get_fulfillment_order(fulfillment_order_id: str) -> dict[str, Any]:
        found = await fulfillment_orders.get(fulfillment_order_id)
        if found is None:
            raise NotFound("fulfillment order", fulfillment_order_id)
        return fulfillment_order_view(found)

    return router
