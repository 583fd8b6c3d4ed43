"""HTTP routes of the notifications service: what was sent to whom, and the download links."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from services.notifications import domain
from services.notifications.application import DeliveryMetrics
from services.notifications.tokens import DownloadTokens, ExpiredDownloadToken, InvalidDownloadToken
from shared.auth import PUBLIC, requires
from shared.clock import now as utcnow
from shared.http import ApiError
from shared.store import AggregateStore, Document

log = logging.getLogger(__name__)


# A bound on one order's list, so that a query can never load an unbounded result.
MAX_LISTED = 1_000


class NotificationView(BaseModel):
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


class ErrorBody(BaseModel):
    error: dict[str, str | None]


def view(notification: Document) -> NotificationView:
    return NotificationView.model_validate(notification)


def build_router(
    notifications: AggregateStore, downloads: AggregateStore, tokens: DownloadTokens, metrics: DeliveryMetrics
) -> APIRouter:
    router = APIRouter(tags=["notifications"])

    @router.get("/notifications", response_model=NotificationList, dependencies=[requires("orders:read")])
    async def list_notifications(order_id: Annotated[str, Query(min_length=1, max_length=128)]) -> NotificationList:
        """The emails about an order: sent, failed, or still pending; oldest first (at most
        MAX_LISTED: an order is emailed a few times, not thousands)."""
        found = await notifications.find({"order_id": {"$eq": order_id}}, sort=[("created_at", 1)], limit=MAX_LISTED)
        return NotificationList(items=[view(n) for n in found])

    @router.get(
        "/downloads/{token}",
        dependencies=[PUBLIC],  # the link itself is the signed capability
        status_code=302,
        response_class=RedirectResponse,
        responses={
            302: {"description": "A valid link: redirects to the asset, and counts the download."},
            403: {
                "model": ErrorBody,
                "description": "The link was altered or not issued by this shop, or the "
                "asset's URL is not one a buyer may be sent to (shared/urls.py).",
            },
            404: {"model": ErrorBody, "description": "A genuine link the shop has no record of."},
            410: {"model": ErrorBody, "description": "The link expired, or its downloads ran out."},
        },
    )
    async def download(token: Annotated[str, Path(max_length=2048)]) -> RedirectResponse:
        """Follow a download link from a download-links email."""
        try:
            claims = tokens.verify(token, utcnow())
        except InvalidDownloadToken:
            metrics.downloads.labels("invalid").inc()
            raise ApiError(
                403, "invalid_download_link",
                "This download link is not valid: it was changed or was not issued by this shop. "
                "Use the link exactly as it appears in your email.",
            ) from None  # fmt: skip
        except ExpiredDownloadToken as expired:
            metrics.downloads.labels("expired").inc()
            when = expired.claims.expires_at.strftime("%d %B %Y, %H:%M UTC")
            raise ApiError(
                410, "download_link_expired",
                f"This download link expired on {when}. Ask the shop for a new one.",
                {"expired_at": expired.claims.expires_at.isoformat()},
            ) from None  # fmt: skip
        try:
            grant = await downloads.apply(claims.jti, partial(domain.count_download, claims=claims, now=utcnow()))
        except domain.DownloadRefused as refused:
            metrics.downloads.labels(refused.code).inc()
            if refused.internal_reason:
                log.warning("download of order %s refused: %s", claims.order_id, refused.internal_reason)
            raise ApiError(refused.status, refused.code, refused.message) from None
        assert grant is not None  # count_download always changes the grant or refuses
        metrics.downloads.labels("redirected").inc()
        return RedirectResponse(
            grant["asset_url"], status_code=302, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        )

    return router
