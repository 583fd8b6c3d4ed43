"""Which emails an event asks for, and what each shows; rules without I/O.

- fulfillment.created: a shipping confirmation when the merchant asked to notify the
  customer and something physical shipped; a download-links email for the digital lines,
  always (the buyer cannot get the goods without it).
- fulfillment.tracking_updated, with notify_customer: a shipping update.
- order.cancelled, with notify_customer: a cancellation notice saying whether and when a
  refund comes.

Each email is drafted with a notification id derived from the triggering event id and the kind
of email, so a redelivered event drafts the same notifications (see notification.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal, TypedDict
from urllib.parse import quote

from services.notifications.tokens import DownloadClaims, DownloadTokens, asset_digest, token_id
from shared.catalog import (
    FinancialStatus,
    FulfillmentChanged,
    FulfillmentLine,
    LineItem,
    OrderCancelled,
    OrderSnapshot,
    Tracking,
)
from shared.clock import iso
from shared.events import CloudEvent
from shared.text import one_line
from shared.urls import UnsafeUrl, check_url


class EmailKind(StrEnum):
    SHIPPING_CONFIRMATION = "shipping_confirmation"
    SHIPPING_UPDATE = "shipping_update"
    DOWNLOAD_LINKS = "download_links"
    ORDER_CANCELLED = "order_cancelled"


# --- what each email's templates are rendered with (templates/<kind>.*) ---------------------


class Item(TypedDict):
    title: str
    quantity: int
    sku: str


class Download(Item):
    url: str


class TrackingLink(TypedDict):
    number: str | None
    url: str | None


class Refund(TypedDict):
    when: Literal["now", "later", "none"]
    """now: refunded with the cancellation; later: the shop refunds separately; none: no refund
    (nothing was charged, or the shop keeps the payment)."""
    refunded: bool
    charged: bool
    amount: str


class OrderContext(TypedDict):
    """What every email shows of its order."""

    customer_name: str
    order_id: str
    order_ref: str


class ShippingContext(OrderContext):
    kind: Literal["shipping_confirmation", "shipping_update"]
    fulfillment_id: str
    items: list[Item]
    carrier: str | None
    tracking: list[TrackingLink]
    shipping_address: list[str]


class DownloadContext(OrderContext):
    kind: Literal["download_links"]
    downloads: list[Download]
    expires_at: str
    max_downloads: int | None


class CancellationContext(OrderContext):
    kind: Literal["order_cancelled"]
    reason: str
    items: list[Item]
    refund: Refund


Context = ShippingContext | DownloadContext | CancellationContext
"""What an email's templates are rendered with, told apart by `kind`."""


def notification_id(trigger_event_id: str, kind: EmailKind) -> str:
    return f"{trigger_event_id}.{kind.value}"


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
    context: Context
    grants: list[DownloadGrant] = field(default_factory=list)


def emails_for_fulfillment(
    event: CloudEvent, changed: FulfillmentChanged, links: LinkPolicy, now: datetime
) -> list[EmailDraft]:
    """The emails a fulfillment.created or fulfillment.tracking_updated event asks for (none for a
    draft's, which a merchant shipped by hand: there is nobody to write to yet)."""
    fulfillment = changed.fulfillment
    if fulfillment.status != "SUCCESS" or changed.order.is_draft:
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


CHARGED = frozenset({FinancialStatus.PAID, FinancialStatus.PARTIALLY_REFUNDED, FinancialStatus.REFUNDED})
"""Financial statuses of a cancelled order whose money was taken (refunded since, or not). An order
never paid is cancelled voided (services/orders/domain/lifecycle.py): it was not charged, so its
email promises no refund, whatever refund the merchant asked for."""


def email_for_cancellation(event: CloudEvent, cancelled: OrderCancelled) -> EmailDraft | None:
    """A cancellation notice when the merchant asked to tell the buyer (a draft has none to tell),
    saying what happens to the money."""
    if not cancelled.notify_customer or cancelled.order.is_draft:
        return None
    order = cancelled.order
    charged = order.financial_status in CHARGED
    total = sum((line.unit_price * line.quantity for line in order.line_items), Decimal(0))
    context: CancellationContext = {
        **_order_context(order),
        "kind": "order_cancelled",
        "reason": cancelled.reason,
        "items": [_item(line, line.quantity) for line in order.line_items],
        "refund": {
            "when": cancelled.refund if charged else "none",
            "refunded": cancelled.refunded,
            "charged": charged,
            "amount": f"{total.quantize(Decimal('0.01'))} {order.currency}",
        },
    }
    return _draft(EmailKind.ORDER_CANCELLED, event, order, context)


def _shipping_email(
    kind: Literal[EmailKind.SHIPPING_CONFIRMATION, EmailKind.SHIPPING_UPDATE],
    event: CloudEvent,
    changed: FulfillmentChanged,
    shipped: list[FulfillmentLine],
) -> EmailDraft:
    order = changed.order
    context: ShippingContext = {
        **_order_context(order),
        "kind": "shipping_confirmation" if kind is EmailKind.SHIPPING_CONFIRMATION else "shipping_update",
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
    grants: list[DownloadGrant] = []
    downloads: list[Download] = []
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
    context: DownloadContext = {
        **_order_context(order),
        "kind": "download_links",
        "downloads": downloads,
        "expires_at": expires.strftime("%d %B %Y, %H:%M UTC"),
        "max_downloads": links.max_downloads,
    }
    return _draft(EmailKind.DOWNLOAD_LINKS, event, order, context, grants)


def _draft(
    kind: EmailKind,
    event: CloudEvent,
    order: OrderSnapshot,
    context: Context,
    grants: list[DownloadGrant] | None = None,
) -> EmailDraft:
    return EmailDraft(
        notification_id=notification_id(event.id, kind),
        kind=kind,
        order_id=order.id,
        to=order.customer.email.strip(),
        trigger_event_id=event.id,
        trigger_event_type=event.type,
        context=context,
        grants=grants or [],
    )


def order_reference(order_id: str, number: int | None = None) -> str:
    """What the buyer sees as the order number: the shop's number ("#1001"); an order from before
    numbers existed shows the start of its id instead."""
    if number is not None:
        return f"#{number}"
    return "#" + order_id.replace("-", "")[:8].upper()


def _order_context(order: OrderSnapshot) -> OrderContext:
    return {
        "customer_name": one_line(order.customer.name),
        "order_id": order.id,
        "order_ref": order_reference(order.id, order.number),
    }


def _order_line(order: OrderSnapshot, line: FulfillmentLine) -> LineItem | None:
    return next((item for item in order.line_items if item.id == line.line_item_id), None)


def _item(line: LineItem | None, quantity: int, sku: str = "") -> Item:
    title = line.title if line else sku
    return {"title": one_line(title), "quantity": quantity, "sku": line.sku if line else sku}


def _address_lines(order: OrderSnapshot) -> list[str]:
    address = order.shipping_address
    return [one_line(part) for part in address.lines()] if address is not None else []


CARRIER_TRACKING_URLS = {
    "dhl": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}",
    "dhl express": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={number}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "postnord": "https://tracking.postnord.com/tracking.html?id={number}",
    "ups": "https://www.ups.com/track?tracknum={number}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
}


def tracking_links(tracking: Tracking) -> list[TrackingLink]:
    """Each tracking number with its link: the one the merchant gave, else the carrier's
    public tracking page when the carrier is known, else none. A given URL that is not one a
    buyer may be sent to (shared/urls.py) never reaches an email, whatever let it in."""
    template = CARRIER_TRACKING_URLS.get((tracking.company or "").strip().lower())
    given = [_safe_tracking_url(url) for url in tracking.urls]
    links: list[TrackingLink] = []
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
