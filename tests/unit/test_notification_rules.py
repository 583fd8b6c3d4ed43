"""Which emails an event asks for, and a notification's life: pending, then sent or failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import pytest

from services.notifications.domain import emails, notification
from services.notifications.domain.emails import EmailKind
from services.notifications.domain.notification import Notification, RetryPolicy
from services.notifications.tokens import DownloadTokens
from shared import clock
from shared.catalog import (
    Address,
    Customer,
    FinancialStatus,
    FulfillmentChanged,
    FulfillmentLine,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    FulfillmentSnapshot,
    LineItem,
    NotificationOutcome,
    OrderCancelled,
    OrderSnapshot,
    Tracking,
)
from shared.events import CloudEvent, new_event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LINK_SECRET = "a-test-secret-of-32-bytes-length"
TOKENS = DownloadTokens(LINK_SECRET.encode())
LINKS = emails.LinkPolicy(TOKENS, "https://shop.example/", timedelta(days=7), max_downloads=3)
EBOOK_URL = "https://cdn.example.com/e-book.pdf"


def order(financial_status: str = "paid") -> OrderSnapshot:
    return OrderSnapshot(
        id="5e2f0c1a-0000-4000-8000-000000000001",
        customer=Customer(email="buyer@example.com", name="Ada   Buyer"),
        shipping_address=Address(name="Ada Buyer", address1="Storgatan 1", city="Stockholm", zip="11122"),
        currency="SEK",
        financial_status=FinancialStatus(financial_status),
        created_at="2026-03-01T10:00:00+00:00",
        line_items=[
            LineItem(id="line-mug", sku="MUG-1", title="Mug", quantity=2, unit_price=Decimal("99.50")),
            LineItem(id="line-book", sku="EBOOK-1", title="E-book", quantity=1, unit_price=Decimal("50"),
                     requires_shipping=False, digital_asset_url=EBOOK_URL),
        ],
    )  # fmt: skip


MUG = FulfillmentLine(line_item_id="line-mug", sku="MUG-1", quantity=2)
BOOK = FulfillmentLine(line_item_id="line-book", sku="EBOOK-1", quantity=1, digital_asset_url=EBOOK_URL)


def fulfillment_event(
    event_type: str = "fulfillment.created",
    lines: list[FulfillmentLine] | None = None,
    notify: bool = True,
    status: Literal["SUCCESS", "CANCELLED"] = "SUCCESS",
    tracking: Tracking | None = None,
) -> tuple[CloudEvent, FulfillmentChanged]:
    snapshot = order()
    fulfillment = FulfillmentSnapshot(
        id="ful-1", order_id=snapshot.id, fulfillment_order_id="fo-1", location_id="loc-1", status=status,
        line_items=lines if lines is not None else [MUG], notify_customer=notify,
        tracking=tracking or Tracking(numbers=["1Z999AA10123456784"], company="UPS"),
        created_at="2026-03-01T11:00:00+00:00", updated_at="2026-03-01T11:00:00+00:00",
    )  # fmt: skip
    fulfillment_order = FulfillmentOrderSnapshot(
        id="fo-1", order_id=snapshot.id, location_id="loc-1", status=FulfillmentOrderStatus.CLOSED, line_items=[],
        created_at="2026-03-01T10:00:00+00:00", updated_at="2026-03-01T11:00:00+00:00",
    )  # fmt: skip
    changed = FulfillmentChanged(fulfillment=fulfillment, fulfillment_order=fulfillment_order, order=snapshot)
    return new_event("fulfillment", event_type, snapshot.id, changed), changed


def drafts_for(*args: Any, **kwargs: Any) -> list[emails.EmailDraft]:
    event, changed = fulfillment_event(*args, **kwargs)
    return emails.emails_for_fulfillment(event, changed, LINKS, NOW)


# --- which emails ------------------------------------------------------------------------


def test_a_shipment_with_notify_customer_asks_for_a_shipping_confirmation() -> None:
    [draft] = drafts_for()
    assert draft.kind == EmailKind.SHIPPING_CONFIRMATION and draft.context["kind"] == "shipping_confirmation"
    assert draft.to == "buyer@example.com"
    assert draft.context["customer_name"] == "Ada Buyer"  # one line, one space: it goes into a header
    assert draft.context["items"] == [{"title": "Mug", "quantity": 2, "sku": "MUG-1"}]
    assert draft.context["carrier"] == "UPS"
    assert draft.context["tracking"] == [
        {"number": "1Z999AA10123456784", "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784"}
    ]


def test_a_shipment_without_notify_customer_sends_nothing() -> None:
    assert drafts_for(notify=False) == []


def test_a_drafts_shipment_and_cancellation_write_to_nobody() -> None:
    """A draft has no customer yet: before, its emails were drafted to an empty address, each
    failing for good and announced as failed."""
    event, changed = fulfillment_event(lines=[MUG, BOOK])
    draft = changed.model_copy(update={"order": order().model_copy(update={"customer": Customer(email="", name="")})})
    assert emails.emails_for_fulfillment(event, draft, LINKS, NOW) == []
    assert len(emails.emails_for_fulfillment(event, changed, LINKS, NOW)) == 2
    cancelled = OrderCancelled(order=draft.order, refund="none", refunded=False, restock=True,
                               notify_customer=True, reason="customer")  # fmt: skip
    assert emails.email_for_cancellation(new_event("orders", "order.cancelled", draft.order.id, cancelled),
                                         cancelled) is None  # fmt: skip


def test_digital_lines_always_get_their_download_links() -> None:
    [draft] = drafts_for(lines=[BOOK], notify=False)
    assert draft.kind == EmailKind.DOWNLOAD_LINKS and draft.context["kind"] == "download_links"
    [download] = draft.context["downloads"]
    assert download["title"] == "E-book"
    token = download["url"].removeprefix("https://shop.example/downloads/")
    claims = TOKENS.verify(token, NOW)
    assert (claims.order_id, claims.line_item_id, claims.max) == (order().id, "line-book", 3)
    assert claims.expires_at == NOW + timedelta(days=7)
    [grant] = draft.grants
    assert (grant.token_id, grant.asset_url, grant.line_item_id) == (claims.jti, EBOOK_URL, "line-book")


def test_a_mixed_fulfillment_asks_for_both_emails_with_only_their_own_lines() -> None:
    confirmation, downloads = drafts_for(lines=[MUG, BOOK])
    assert confirmation.context["kind"] == "shipping_confirmation" and downloads.context["kind"] == "download_links"
    assert [i["sku"] for i in confirmation.context["items"]] == ["MUG-1"]
    assert [d["sku"] for d in downloads.context["downloads"]] == ["EBOOK-1"]
    assert confirmation.notification_id != downloads.notification_id


def test_a_digital_only_fulfillment_sends_no_shipping_confirmation() -> None:
    assert [d.kind for d in drafts_for(lines=[BOOK], notify=True)] == [EmailKind.DOWNLOAD_LINKS]


def test_tracking_updated_with_notify_customer_asks_for_a_shipping_update() -> None:
    tracking = Tracking(numbers=["A1", "A2"], company="Bring", urls=["https://track.example/A1"])
    [draft] = drafts_for("fulfillment.tracking_updated", lines=[MUG, BOOK], tracking=tracking)
    assert draft.kind == EmailKind.SHIPPING_UPDATE and draft.context["kind"] == "shipping_update"
    # the merchant's link where given; an unknown carrier has no public tracking page to guess
    assert draft.context["tracking"] == [
        {"number": "A1", "url": "https://track.example/A1"},
        {"number": "A2", "url": None},
    ]
    assert drafts_for("fulfillment.tracking_updated", notify=False) == []


def test_an_unsafe_tracking_url_never_reaches_an_email() -> None:
    """Issue #8: a tracking URL of `javascript:alert(...)` was put into a shipping email. The
    event models refuse it; should one get past them anyway, the email leaves it out."""
    smuggled = Tracking.model_construct(
        numbers=["1Z1", "1Z2"], company="UPS", urls=["javascript:alert(document.cookie)", "http://10.0.0.1/x"]
    )
    assert emails.tracking_links(smuggled) == [
        {"number": "1Z1", "url": "https://www.ups.com/track?tracknum=1Z1"},
        {"number": "1Z2", "url": "https://www.ups.com/track?tracknum=1Z2"},
    ]
    extra = Tracking.model_construct(numbers=[], company=None, urls=["data:text/html,x", "https://track.example/1"])
    assert emails.tracking_links(extra) == [{"number": None, "url": "https://track.example/1"}]


def test_a_cancelled_fulfillment_sends_nothing() -> None:
    assert drafts_for("fulfillment.tracking_updated", status="CANCELLED") == []
    assert drafts_for(status="CANCELLED", lines=[MUG, BOOK]) == []


def test_the_same_event_always_maps_to_the_same_notifications() -> None:
    event, changed = fulfillment_event(lines=[MUG, BOOK])
    first = emails.emails_for_fulfillment(event, changed, LINKS, NOW)
    again = emails.emails_for_fulfillment(event, changed, LINKS, NOW + timedelta(hours=1))
    assert [d.notification_id for d in first] == [d.notification_id for d in again]
    assert [d.notification_id for d in first] == [f"{event.id}.shipping_confirmation", f"{event.id}.download_links"]
    assert first[1].grants[0].token_id == again[1].grants[0].token_id


def cancellation(
    notify: bool = True, refund: Literal["now", "later", "none"] = "now", refunded: bool = True, status: str = "paid"
) -> Any:
    cancelled = OrderCancelled(order=order(status), refund=refund, refunded=refunded, restock=True,
                               notify_customer=notify, reason="customer")  # fmt: skip
    return emails.email_for_cancellation(
        new_event("orders", "order.cancelled", cancelled.order.id, cancelled), cancelled
    )


def test_a_cancellation_is_emailed_only_when_the_merchant_asks() -> None:
    assert cancellation(notify=False) is None
    draft = cancellation()
    assert draft.kind == EmailKind.ORDER_CANCELLED
    assert draft.context["refund"] == {"when": "now", "refunded": True, "charged": True, "amount": "249.00 SEK"}


def test_an_unpaid_order_has_no_refund_to_announce() -> None:
    assert cancellation(status="pending", refunded=False).context["refund"]["when"] == "none"


# --- a notification's life -----------------------------------------------------------------

POLICY = RetryPolicy(max_attempts=3, backoff=timedelta(seconds=2), max_backoff=timedelta(seconds=5),
                     claim=timedelta(seconds=60))  # fmt: skip


def pending() -> Notification:
    [draft] = drafts_for()
    rendered = notification.RenderedEmail("Your order is on its way", "text", "<p>html</p>")
    change = notification.record_pending(None, draft, rendered, "<m@shop.example>", NOW)
    assert change is not None and change.events == []
    assert change.document.id == draft.notification_id
    return change.document


def test_a_notification_is_recorded_pending_once() -> None:
    recorded = pending()
    assert recorded.status == "pending" and recorded.attempts == 0
    assert recorded.is_due(NOW)
    [draft] = drafts_for()
    assert notification.record_pending(recorded, draft, notification.RenderedEmail("s", "t", "h"), "<x@y>", NOW) is None


def test_a_claim_counts_the_attempt_and_keeps_others_away_until_it_runs_out() -> None:
    claimed = notification.claim(pending(), NOW, POLICY)
    assert claimed is not None
    assert claimed.document.attempts == 1
    assert notification.claim(claimed.document, NOW + timedelta(seconds=59), POLICY) is None
    taken_over = notification.claim(claimed.document, NOW + timedelta(seconds=61), POLICY)
    assert taken_over is not None and taken_over.document.attempts == 2


def test_sent_is_recorded_with_its_event_and_only_once() -> None:
    claimed = notification.claim(pending(), NOW, POLICY)
    assert claimed is not None
    sent = notification.record_sent(claimed.document, NOW)
    assert sent is not None
    assert sent.document.status == "sent" and sent.document.sent_at == clock.iso(NOW)
    [event] = sent.events
    assert event.type == "notification.sent" and event.subject == order().id
    record = NotificationOutcome.model_validate(event.data).notification
    assert (record.type, record.to, record.status) == ("shipping_confirmation", "buyer@example.com", "sent")
    assert notification.record_sent(sent.document, NOW) is None
    assert notification.claim(sent.document, NOW + timedelta(days=1), POLICY) is None


def test_a_passing_failure_is_retried_later_with_growing_backoff() -> None:
    claimed = notification.claim(pending(), NOW, POLICY)
    assert claimed is not None
    retry = notification.record_failure(claimed.document, "451 try later", False, NOW, POLICY)
    assert retry is not None and retry.events == []
    assert retry.document.status == "pending" and retry.document.error == "451 try later"
    assert retry.document.next_attempt_at == clock.iso(NOW + timedelta(seconds=2))
    assert [POLICY.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 5, 5]


def test_the_last_failed_attempt_records_failed_and_emits_notification_failed() -> None:
    current = pending()
    for attempt in range(1, 4):
        claimed = notification.claim(current, datetime.fromisoformat(current.next_attempt_at), POLICY)
        assert claimed is not None
        change = notification.record_failure(claimed.document, "connection refused", False, NOW, POLICY)
        assert change is not None
        current = change.document
        assert current.attempts == attempt
    assert change is not None
    assert current.status == "failed" and current.failed_at == clock.iso(NOW)
    assert [e.type for e in change.events] == ["notification.failed"]
    assert NotificationOutcome.model_validate(change.events[0].data).notification.error == "connection refused"


def test_attempts_that_never_finish_still_end_failed_after_the_last_one() -> None:
    """Issue #8: a notification whose sending kept crashing stayed pending, retried past
    NOTIFY_MAX_ATTEMPTS (14 of 10). The claim after the last attempt records it failed."""
    current = pending()
    for attempt in range(1, 4):
        claimed = notification.claim(current, datetime.fromisoformat(current.next_attempt_at), POLICY)
        assert claimed is not None and claimed.document.attempts == attempt
        current = claimed.document  # ... and the attempt never records an outcome
    later = datetime.fromisoformat(current.next_attempt_at)
    given_up = notification.claim(current, later, POLICY)
    assert given_up is not None
    assert given_up.document.status == "failed" and given_up.document.attempts == 3
    assert "gave up after 3 attempts" in (given_up.document.error or "")
    assert [e.type for e in given_up.events] == ["notification.failed"]
    assert notification.claim(given_up.document, later + timedelta(days=1), POLICY) is None


def test_a_permanent_refusal_is_not_retried() -> None:
    claimed = notification.claim(pending(), NOW, POLICY)
    assert claimed is not None
    change = notification.record_failure(claimed.document, "550 no such user", True, NOW, POLICY)
    assert change is not None and change.document.status == "failed"
    assert [e.type for e in change.events] == ["notification.failed"]


@pytest.mark.parametrize("kind", list(EmailKind))
def test_message_ids_are_stable_per_notification(kind: EmailKind) -> None:
    one = notification.message_id(emails.notification_id("evt-1", kind), "shop.example")
    assert one == notification.message_id(emails.notification_id("evt-1", kind), "shop.example")
    assert one != notification.message_id(emails.notification_id("evt-2", kind), "shop.example")
    assert one.startswith("<") and one.endswith("@shop.example>")
