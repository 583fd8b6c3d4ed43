"""A download link as the shop keeps it, and the rules for following one; without I/O.

The signed token in the emailed URL says what the link grants (tokens.py); the shop keeps,
under the token's id, what it was granted for and how often it was followed, so a link works
at most `max_downloads` times and only ever leads to the asset that was sold.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.notifications.domain.emails import DownloadGrant
from services.notifications.tokens import DownloadClaims, asset_digest
from shared.aggregates import Change
from shared.clock import iso
from shared.urls import UnsafeUrl, check_url


class DownloadLink(BaseModel):
    """One emailed download link: the asset it leads to, bound to the order line it was sold
    on, and the download counter."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str  # the token's id (`jti`)
    order_id: str
    line_item_id: str
    asset_url: str
    asset: str  # asset_digest(asset_url): what the token is bound to
    expires_at: str
    max_downloads: int | None
    downloads: int = 0
    created_at: str
    last_download_at: str | None = None
    version: int = 0


class DownloadRefused(Exception):
    """A link that may not be followed; the message says why, in words for the buyer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        internal_reason: str | None = None,
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.internal_reason = internal_reason  # for the shop's logs, not for the buyer
        self.details = details


def invalid_link() -> DownloadRefused:
    return DownloadRefused(
        403, "invalid_download_link",
        "This download link is not valid: it was changed or was not issued by this shop. "
        "Use the link exactly as it appears in your email.",
    )  # fmt: skip


def expired_link(expired_at: datetime) -> DownloadRefused:
    when = expired_at.strftime("%d %B %Y, %H:%M UTC")
    return DownloadRefused(
        410, "download_link_expired", f"This download link expired on {when}. Ask the shop for a new one.",
        details={"expired_at": expired_at.isoformat()},
    )  # fmt: skip


def open_grant(existing: DownloadLink | None, grant: DownloadGrant, now: datetime) -> Change[DownloadLink] | None:
    """The link's record, kept from when its email is recorded; a redelivered event changes nothing."""
    if existing is not None:
        return None
    return Change(
        DownloadLink(
            id=grant.token_id,
            order_id=grant.order_id,
            line_item_id=grant.line_item_id,
            asset_url=grant.asset_url,
            asset=asset_digest(grant.asset_url),
            expires_at=grant.expires_at,
            max_downloads=grant.max_downloads,
            created_at=iso(now),
        )
    )


def count_download(link: DownloadLink | None, claims: DownloadClaims, now: datetime) -> Change[DownloadLink]:
    """One more download of a verified link, within its cap; the link must match what was granted."""
    if link is None:
        raise DownloadRefused(404, "download_not_found", "This download link is not known to the shop.")
    if (link.order_id, link.line_item_id, link.asset) != (claims.order_id, claims.line_item_id, claims.asset):
        raise DownloadRefused(403, "invalid_download_link", "This download link does not match what was sold.")
    try:
        check_url(link.asset_url, asset=True)  # whatever let it in, never redirect there
    except UnsafeUrl as unsafe:
        raise DownloadRefused(
            403, "download_unavailable",
            "This download is not available: the file's address is not one the shop may send you to. "
            "Ask the shop for help.",
            internal_reason=f"asset URL {unsafe}",
        ) from None  # fmt: skip
    if claims.max is not None and link.downloads >= claims.max:
        raise DownloadRefused(
            410, "download_limit_reached",
            f"This download link has been used {link.downloads} times, the most it allows; "
            "ask the shop for a new one.",
        )  # fmt: skip
    return Change(link.model_copy(update={"downloads": link.downloads + 1, "last_download_at": iso(now)}))
