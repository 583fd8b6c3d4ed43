"""HTTP routes of the notifications service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from shared.store import AggregateStore


def build_router(notifications: AggregateStore) -> APIRouter:
    router = APIRouter(tags=["notifications"])

    @router.get("/notifications")
    async def list_notifications(order_id: str) -> dict[str, Any]:
        found = await notifications.find({"order_id": order_id}, sort=[("recorded_at", 1)])
        return {"items": [{k: v for k, v in n.items() if k != "version"} for n in found]}

    return router
