"""What the buyer is told, and when: the rules of the notifications service, without I/O.

Which emails an event asks for:
- fulfillment.created: a shipping confirmation when the merchant asked to notify the
  customer and something physical shipped; a download-links email for the digital lines,
  always (the buyer cannot get the goods without it).
- fulfillment.tracking_updated, with notify_customer: a shipping update.
- order.cancelled, with notify_customer: a cancellation notice saying whether and when a
  refund comes.

Each email is one notification document whose id is derived from the triggering event id
and the kind of email, so a redelivered event finds its notification already there: one
email per event. A notification is `pending` until the SMTP server accepted it (`sent`) or
delivery was given up (`failed`); sent and failed are announced in the same write
(notification.sent / notification.failed through the store's outbox).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from services.notifications.tokens import DownloadClaims, DownloadTokens, asset_digest, token_id
from shared.aggregates import Change, Document
from shared.catalog import (
    FulfillmentChanged,
    FulfillmentLine,
    LineItem,
    NotificationOutcome,
    NotificationRecord,
    OrderCancelled,
    OrderSnapshot,
    Tracking,
)
from shared.clock import epoch, iso
from shared.events import CloudEvent, new_event
from shared.urls import UnsafeUrl, check_url

SOURCE = "notifications"
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1f6d1e-5b7a-4c55-9d7e-0b3c2a7e9a10")


class EmailKind(StrEnum):
    SHIPPING_CONFIRMATION = "shipping_confirmation"
    SHIPPING_UPDATE = "shipping_update"
    DOWNLOAD_LINKS = "download_links"
    ORDER_CANCELLED = "order_cancelled"


def next_attempt(moment: datetime) -> Document:
    """When a notification is next due, in both forms: `next_attempt_at` (RFC 3339) for people,
    `next_attempt_ts` (Unix seconds) for the sweep's query, which ranges over it from an index
    (a range over date strings runs on a slow path that reads every document on the embedded store)."""
    return {"next_attempt_at": iso(moment), "next_attempt_ts": moment.timestamp()}


def next_attempt_ts(notification: Document) -> float:
    """When the notification is due, in Unix seconds (a notification recorded before
    `next_attempt_ts` existed has only the RFC 3339 form)."""
    ts = notification.get("next_attempt_ts")
    if isinstance(ts, int | float):
        return float(ts)
    return epoch(notification["next_attempt_at"])


def notification_id(trigger_event_id: str, kind: EmailKind) -> str:
    return f"{trigger_event_id}.{kind.value}"


def message_id(notification: str, domain: str) -> str:
    """A Message-ID derived from the notification: a resent email is recognisably the same one."""
    return f"<{uuid.uuid5(MESSAGE_ID_NAMESPACE, notification)}@{domain}>"


# --- deciding which emails an event asks for -------------------------------------------


@dataclass(frozen=True)
class LinkPolicy:
    """How download links are made: where they point, how long they last, how often they work."""

    tokens: DownloadTokens
    public_base_url: str
    lifetime: timedelta = timedelta(days=7)
    max_downloads: int | None = None

    def url(self, token: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/downloads/{token}"


@dataclass(frozen=True)
class DownloadGrant:
    """The server-side half of a download link: where the asset is, and the download counter."""

    token_id: str
    order_id: str
    line_item_id: str
    asset_url: str
    expires_at: str
    max_downloads: int | None


@dataclass(frozen=True)
class EmailDraft:
    """An email an event asks for, before it is rendered: who, what kind, and what it shows."""

    notification_id: str
    kind: EmailKind
    order_id: str
    to: str
    trigger_event_id: str
    trigger_event_type: str
    context: dict[str, Any]
    grants: list[DownloadGrant] = field(default_factory=list)


def emails_for_fulfillment(
    event: CloudEvent, changed: FulfillmentChanged, links: LinkPolicy, now: datetime
) -> list[EmailDraft]:
    """The emails a fulfillment.created or fulfillment.tracking_updated event asks for."""
    fulfillment = changed.fulfillment
    if fulfillment.status != "SUCCESS":
        return []
    shipped = [line for line in fulfillment.line_items if not line.digital_asset_url]
    digital = [line for line in fulfillment.line_items if line.digital_asset_url]
    drafts: list[EmailDraft] = []
    if event.type == "fulfillment.created":
        if fulfillment.notify_customer and shipped:
            drafts.append(_shipping_email(EmailKind.SHIPPING_CONFIRMATION, event, changed, shipped))
        if digital:
            drafts.append(_download_email(event, changed, digital, links, now))
    elif event.type == "fulfillment.tracking_updated" and fulfillment.notify_customer and shipped:
        drafts.append(_shipping_email(EmailKind.SHIPPING_UPDATE, event, changed, shipped))
    return drafts


def email_for_cancellation(event: CloudEvent, cancelled: OrderCancelled) -> EmailDraft | None:
    """A cancellation notice when the merchant asked to tell the buyer, saying what happens to the money."""
    if not cancelled.notify_customer:
        return None
    order = cancelled.order
    charged = order.financial_status.value != "pending"
    total = sum((line.unit_price * line.quantity for line in order.line_items), Decimal(0))
    context = {
        **_order_context(order),
        "reason": cancelled.reason,
        "items": [_item(line, line.quantity) for line in order.line_items],
        "refund": {
            # "now": refunded with the cancellation; "later": the shop refunds separately;
            # "none": no refund (nothing was charged, or the shop keeps the payment).
            "when": cancelled.refund if charged else "none",
            "refunded": cancelled.refunded,
            "charged": charged,
            "amount": f"{total.quantize(Decimal('0.01'))} {order.currency}",
        },
    }
    return _draft(EmailKind.ORDER_CANCELLED, event, order, context)


def _shipping_email(
    kind: EmailKind, event: CloudEvent, changed: FulfillmentChanged, shipped: list[FulfillmentLine]
) -> EmailDraft:
    order = changed.order
    context = {
        **_order_context(order),
        "fulfillment_id": changed.fulfillment.id,
        "items": [_item(_order_line(order, line), line.quantity, line.sku) for line in shipped],
        "carrier": changed.fulfillment.tracking.company,
        "tracking": tracking_links(changed.fulfillment.tracking),
        "shipping_address": _address_lines(order),
    }
    return _draft(kind, event, order, context)


def _download_email(
    event: CloudEvent, changed: FulfillmentChanged, digital: list[FulfillmentLine], links: LinkPolicy, now: datetime
) -> EmailDraft:
    order = changed.order
    notification = notification_id(event.id, EmailKind.DOWNLOAD_LINKS)
    expires = now + links.lifetime
    grants, downloads = [], []
    for line in digital:
        asset_url = str(line.digital_asset_url)
        claims = DownloadClaims(
            jti=token_id(notification, line.line_item_id),
            order_id=order.id,
            line_item_id=line.line_item_id,
            asset=asset_digest(asset_url),
            exp=int(expires.timestamp()),
            max=links.max_downloads,
        )
        grants.append(
            DownloadGrant(claims.jti, order.id, line.line_item_id, asset_url, iso(expires), links.max_downloads)
        )
        item = _item(_order_line(order, line), line.quantity, line.sku)
        downloads.append({**item, "url": links.url(links.tokens.sign(claims))})
    context = {
        **_order_context(order),
        "downloads": downloads,
        "expires_at": expires.strftime("%d %B %Y, %H:%M UTC"),
        "max_downloads": links.max_downloads,
    }
    return _draft(EmailKind.DOWNLOAD_LINKS, event, order, context, grants)


def _draft(
    kind: EmailKind,
    event: CloudEvent,
    order: OrderSnapshot,
    context: dict[str, Any],
    grants: list[DownloadGrant] | None = None,
) -> EmailDraft:
    return EmailDraft(
        notification_id=notification_id(event.id, kind),
        kind=kind,
        order_id=order.id,
        to=order.customer.email.strip(),
        trigger_event_id=event.id,
        trigger_event_type=event.type,
        context={**context, "kind": kind.value},
        grants=grants or [],
    )


def _one_line(text: str) -> str:
    """Names end up in headers: no line breaks, no runs of spaces."""
    return " ".join(text.split())


def order_reference(order_id: str) -> str:
    """What the buyer sees as the order number."""
    return "#" + order_id.replace("-", "")[:8].upper()


def _order_context(order: OrderSnapshot) -> dict[str, Any]:
    return {
        "customer_name": _one_line(order.customer.name),
        "order_id": order.id,
        "order_ref": order_reference(order.id),
    }


def _order_line(order: OrderSnapshot, line: FulfillmentLine) -> LineItem | None:
    return next((item for item in order.line_items if item.id == line.line_item_id), None)


def _item(line: LineItem | None, quantity: int, sku: str = "") -> dict[str, Any]:
    title = line.title if line else sku
    return {"title": _one_line(title), "quantity": quantity, "sku": line.sku if line else sku}


def _address_lines(order: OrderSnapshot) -> list[str]:
    address = order.shipping_address or {}
    city = " ".join(part for part in (address.get("zip"), address.get("city")) if part)
    parts = [address.get("name"), address.get("address1"), address.get("address2"), city,
             address.get("province"), address.get("country_code")]  # fmt: skip
    return [_one_line(part) for part in parts if part]


CARRIER_TRACKING_URLS = {
    "dhl": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}",
    "dhl express": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "postnord": "https://tracking.postnord.com/tracking.html?id={number}",
    "ups": "https://www.ups.com/track?tracknum={number}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
}


def tracking_links(tracking: Tracking) -> list[dict[str, str | None]]:
    """Each tracking number with its link: the one the merchant gave, else the carrier's
    public tracking page when the carrier is known, else none. A given URL that is not one a
    buyer may be sent to (shared/urls.py) never reaches an email, whatever let it in."""
    template = CARRIER_TRACKING_URLS.get((tracking.company or "").strip().lower())
    given = [_safe_tracking_url(url) for url in tracking.urls]
    links: list[dict[str, str | None]] = []
    for index, number in enumerate(tracking.numbers):
        url = given[index] if index < len(given) else None
        if url is None and template:
            url = template.format(number=quote(number, safe=""))
        links.append({"number": number, "url": url})
    links.extend({"number": None, "url": url} for url in given[len(tracking.numbers) :] if url)
    return links


def _safe_tracking_url(url: str) -> str | None:
    try:
        return check_url(url, asset=False)
    except UnsafeUrl:
        return None


# --- a notification's life: pending, then sent or failed --------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff; a permanent refusal is never retried."""

    max_attempts: int = 10
    backoff: timedelta = timedelta(seconds=2)
    max_backoff: timedelta = timedelta(minutes=5)
    claim: timedelta = timedelta(seconds=60)  # how long one sender owns an attempt

    def delay(self, attempts: int) -> timedelta:
        delay: timedelta = self.backoff * 2 ** max(0, attempts - 1)
        return min(self.max_backoff, delay)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def record_pending(
    existing: Document | None, draft: EmailDraft, rendered: RenderedEmail, msg_id: str, now: datetime
) -> Change | None:
    """The notification as it is before anything is sent; a redelivered event changes nothing."""
    if existing is not None:
        return None
    document: Document = {
        "order_id": draft.order_id,
        "type": draft.kind.value,
        "to": draft.to,
        "to_name": draft.context.get("customer_name", ""),
        "subject": _one_line(rendered.subject),
        "status": "pending",
        "trigger_event_id": draft.trigger_event_id,
        "trigger_event_type": draft.trigger_event_type,
        "message_id": msg_id,
        "text": rendered.text,
        "html": rendered.html,
        "created_at": iso(now),
        "attempts": 0,
        **next_attempt(now),
        "sent_at": None,
        "failed_at": None,
        "error": None,
    }
    return Change(document)


def is_due(notification: Document, now: datetime) -> bool:
    return bool(notification["status"] == "pending" and next_attempt_ts(notification) <= now.timestamp())


def claim(notification: Document | None, now: datetime, policy: RetryPolicy) -> Change | None:
    """Take the next attempt: nobody else sends it until the claim runs out (a crashed
    sender's attempt is taken over then). Counting the attempt here bounds even attempts
    that crash the process: once they have all been used without an outcome, the
    notification is recorded failed instead."""
    if notification is None or not is_due(notification, now):
        return None
    if notification["attempts"] >= policy.max_attempts:
        last = f"; the last error: {notification['error']}" if notification.get("error") else ""
        error = f"gave up after {notification['attempts']} attempts, the last of which never finished{last}"
        failed = {**notification, "status": "failed", "failed_at": iso(now), "error": error}
        return Change(failed, [_outcome("notification.failed", failed)])
    claimed = {**notification, "attempts": notification["attempts"] + 1, **next_attempt(now + policy.claim)}
    return Change(claimed)


def record_sent(notification: Document | None, now: datetime) -> Change | None:
    if notification is None or notification["status"] != "pending":
        return None
    sent = {**notification, "status": "sent", "sent_at": iso(now), "error": None}
    return Change(sent, [_outcome("notification.sent", sent)])


def record_failure(
    notification: Document | None, error: str, permanent: bool, now: datetime, policy: RetryPolicy
) -> Change | None:
    """A failed attempt: try again later, unless the refusal is permanent or the attempts ran out."""
    if notification is None or notification["status"] != "pending":
        return None
    if permanent or notification["attempts"] >= policy.max_attempts:
        failed = {**notification, "status": "failed", "failed_at": iso(now), "error": error}
        return Change(failed, [_outcome("notification.failed", failed)])
    retry_at = now + policy.delay(notification["attempts"])
    return Change({**notification, **next_attempt(retry_at), "error": error})


def record_of(notification: Document) -> NotificationRecord:
    return NotificationRecord(
        id=notification["id"],
        order_id=notification["order_id"],
        type=notification["type"],
        to=notification["to"],
        subject=notification["subject"],
        status=notification["status"],
        sent_at=notification.get("sent_at"),
        error=notification.get("error"),
    )


def _outcome(event_type: str, notification: Document) -> CloudEvent:
    outcome = NotificationOutcome(notification=record_of(notification))
    return new_event(SOURCE, event_type, notification["order_id"], outcome)


# --- downloads --------------------------------------------------------------------------


class DownloadRefused(Exception):
    """A genuine, unexpired link that still may not be used; the message says why."""

    def __init__(self, status: int, code: str, message: str, internal_reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.internal_reason = internal_reason  # for the shop's logs, not for the buyer


def open_grant(existing: Document | None, grant: DownloadGrant, now: datetime) -> Change | None:
    if existing is not None:
        return None
    document: Document = {
        "order_id": grant.order_id,
        "line_item_id": grant.line_item_id,
        "asset_url": grant.asset_url,
        "asset": asset_digest(grant.asset_url),
        "expires_at": grant.expires_at,
        "max_downloads": grant.max_downloads,
        "downloads": 0,
        "created_at": iso(now),
        "last_download_at": None,
    }
    return Change(document)


def count_download(grant: Document | None, claims: DownloadClaims, now: datetime) -> Change:
    """One more download of a verified link, within its cap; the link must match what was granted."""
    if grant is None:
        raise DownloadRefused(404, "download_not_found", "This download link is not known to the shop.")
    bound = (grant["order_id"], grant["line_item_id"], grant["asset"])
    if bound != (claims.order_id, claims.line_item_id, claims.asset):
        raise DownloadRefused(403, "invalid_download_link", "This download link does not match what was sold.")
    try:
        check_url(grant["asset_url"], asset=True)  # whatever let it in, never redirect there
    except UnsafeUrl as unsafe:
        raise DownloadRefused(
            403, "download_unavailable",
            "This download is not available: the file's address is not one the shop may send you to. "
            "Ask the shop for help.",
            internal_reason=f"asset URL {unsafe}",
        ) from None  # fmt: skip
    if claims.max is not None and grant["downloads"] >= claims.max:
        raise DownloadRefused(
            410, "download_limit_reached",
            f"This download link has been used {grant['downloads']} times, the most it allows; "
            "ask the shop for a new one.",
        )  # fmt: skip
    return Change({**grant, "downloads": grant["downloads"] + 1, "last_download_at": iso(now)})
