"""HTTP routes of the inventory service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from shared.store import AggregateStore


def build_router(reservations: AggregateStore) -> APIRouter:
    router = APIRouter(tags=["reservations"])

    @router.get("/reservations")
    async def list_reservations(order_id: str) -> dict[str, Any]:
        return {"items": await reservations.find({"order_id": order_id})}

    return router
