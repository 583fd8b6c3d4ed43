"""HTTP routes of the notifications service: what was sent to whom, and the download links."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict

from services.notifications.application import Delivery
from services.notifications.domain.download_link import DownloadRefused
from shared.auth import PUBLIC, requires
from shared.http import ApiError, ErrorResponse

# A bound on one order's list, so that a query can never load an unbounded result.
MAX_LISTED = Delivery.MAX_LISTED


class NotificationView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    to: str
    subject: str
    status: Literal["pending", "sent", "failed"]
    sent_at: str | None
    created_at: str
    failed_at: str | None = None
    attempts: int
    error: str | None = None
    trigger_event_id: str


class NotificationList(BaseModel):
    items: list[NotificationView]


def build_router(delivery: Delivery) -> APIRouter:
    router = APIRouter(tags=["notifications"])

    @router.get("/notifications", response_model=NotificationList, dependencies=[requires("orders:read")])
    async def list_notifications(order_id: Annotated[str, Query(min_length=1, max_length=128)]) -> NotificationList:
        """The emails about an order: sent, failed, or still pending; oldest first (at most
        MAX_LISTED: an order is emailed a few times, not thousands)."""
        found = await delivery.emails_of(order_id)
        return NotificationList(items=[NotificationView.model_validate(n) for n in found])

    @router.get(
        "/downloads/{token}",
        dependencies=[PUBLIC],  # the link itself is the signed capability
        status_code=302,
        response_class=RedirectResponse,
        responses={
            302: {"description": "A valid link: redirects to the asset, and counts the download."},
            403: {
                "model": ErrorResponse,
                "description": "The link was altered or not issued by this shop, or the "
                "asset's URL is not one a buyer may be sent to (shared/urls.py).",
            },
            404: {"model": ErrorResponse, "description": "A genuine link the shop has no record of."},
            410: {"model": ErrorResponse, "description": "The link expired, or its downloads ran out."},
        },
    )
    async def download(token: Annotated[str, Path(max_length=2048)]) -> RedirectResponse:
        """Follow a download link from a download-links email."""
        try:
            asset_url = await delivery.download(token)
        except DownloadRefused as refused:
            raise ApiError(refused.status, refused.code, refused.message, refused.details) from None
        return RedirectResponse(
            asset_url, status_code=302, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        )

    return router
