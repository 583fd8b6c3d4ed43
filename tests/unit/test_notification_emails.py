"""The emails themselves: rendered from the template files, multipart, with what the buyer needs."""

from __future__ import annotations

import email
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Literal

import pytest

from services.notifications.domain import emails, notification
from services.notifications.domain.emails import EmailKind
from services.notifications.mailer import SendFailed, SmtpConfig, build_message, redact
from services.notifications.templates import BUILT_IN, EmailTemplates
from services.orders import domain as orders_domain
from services.orders.domain import CancelReason, Refund
from shared.catalog import OrderCancelled
from shared.events import new_event
from tests.unit import test_order_rules as order_rules
from tests.unit.test_notification_rules import BOOK, MUG, NOW, cancellation, drafts_for
from tests.unit.test_notification_rules import order as order_snapshot

TEMPLATES = EmailTemplates(shop_name="Mugs & Books")
CONFIG = SmtpConfig(host="127.0.0.1", port=25, mail_from="Mugs & Books <orders@shop.example>")


def rendered(draft: emails.EmailDraft) -> notification.RenderedEmail:
    return TEMPLATES.render(draft.kind, draft.context)


def test_every_kind_has_its_three_template_files() -> None:
    for kind in EmailKind:
        for suffix in ("subject.txt", "txt", "html"):
            assert (BUILT_IN / f"{kind.value}.{suffix}").is_file()
    TEMPLATES.check()


def test_the_shipping_confirmation_lists_items_carrier_tracking_numbers_and_links() -> None:
    [draft] = drafts_for()
    email_ = rendered(draft)
    assert email_.subject == "Your order #5E2F0C1A is on its way"
    link = "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    for body in (email_.text, email_.html):
        assert "Mug" in body and "1Z999AA10123456784" in body and "UPS" in body and link in body
        assert "Mugs &amp; Books" in body or "Mugs & Books" in body
    assert f'href="{link}"' in email_.html
    assert "Storgatan 1" in email_.text


def test_the_shipping_update_shows_the_new_tracking() -> None:
    [draft] = drafts_for("fulfillment.tracking_updated")
    email_ = rendered(draft)
    assert email_.subject == "Tracking update for your order #5E2F0C1A"
    assert "1Z999AA10123456784" in email_.text and "1Z999AA10123456784" in email_.html


def test_the_download_email_has_one_link_per_digital_item() -> None:
    [draft] = drafts_for(lines=[BOOK, BOOK.model_copy(update={"line_item_id": "line-2"})])
    email_ = rendered(draft)
    assert draft.context["kind"] == "download_links"
    urls = [d["url"] for d in draft.context["downloads"]]
    assert len(set(urls)) == 2
    for url in urls:
        assert url in email_.text and f'href="{url}"' in email_.html
    assert "for at most 3 downloads" in email_.text
    assert (NOW + timedelta(days=7)).strftime("%d %B %Y") in email_.text


@pytest.mark.parametrize(
    ("refund", "refunded", "status", "wording"),
    [
        ("now", True, "paid", "We have refunded 249.00 SEK"),
        ("now", False, "paid", "We are refunding 249.00 SEK"),
        ("later", False, "paid", "will be issued separately, later"),
        ("none", False, "paid", "No refund will be issued"),
        ("now", False, "pending", "You were not charged"),
    ],
)
def test_the_cancellation_says_whether_and_when_a_refund_comes(
    refund: Literal["now", "later", "none"], refunded: bool, status: str, wording: str
) -> None:
    email_ = rendered(cancellation(refund=refund, refunded=refunded, status=status))
    assert email_.subject == "Your order #5E2F0C1A has been cancelled"
    assert wording in email_.text
    assert wording.split(" 249")[0] in email_.html


def test_emails_say_the_shops_order_number_not_a_piece_of_its_id() -> None:
    """Issue 12: "no order numbers a person can read out on the phone (emails say "#2D613A51")":
    an order with a number is "#1001" in the subject and the body."""
    numbered = order_snapshot("paid").model_copy(update={"number": 1001})
    cancelled = OrderCancelled(order=numbered, refund="now", refunded=True, restock=True, notify_customer=True,
                               reason="customer")  # fmt: skip
    draft = emails.email_for_cancellation(new_event("orders", "order.cancelled", numbered.id, cancelled), cancelled)
    assert draft is not None
    email_ = rendered(draft)
    assert email_.subject == "Your order #1001 has been cancelled"
    assert "Order #1001" in email_.text and "#5E2F0C1A" not in email_.text + email_.html


@pytest.mark.parametrize(
    ("paid", "refund", "wording", "not_said"),
    [
        (False, Refund.NOW, "You were not charged for this order, so there is nothing to refund", "refund"),
        (False, Refund.LATER, "You were not charged for this order, so there is nothing to refund", "refund of"),
        (False, Refund.NONE, "You were not charged for this order, so there is nothing to refund", "refund of"),
        (True, Refund.NOW, "We have refunded 199.00 SEK to your original payment method", "not charged"),
        (True, Refund.LATER, "Your refund of 199.00 SEK will be issued separately, later", "not charged"),
        (True, Refund.NONE, "No refund will be issued for this order", "not charged"),
    ],
)
def test_a_false_promise_the_cancellation_email_follows_what_happened_to_the_money(
    paid: bool, refund: Refund, wording: str, not_said: str
) -> None:
    """Issue 11, "a false promise": cancelling an order that was never paid with `refund: now` (or
    `later`) sent an email promising a refund. The event is the orders service's own (its cancel
    rule), so the email reads what that rule says happened, not what a test assumed it says."""
    order = order_rules.placed(financial_status="paid" if paid else "pending")
    change = orders_domain.cancel(order, refund=refund, restock=True, notify_customer=True,
                                  reason=CancelReason.CUSTOMER, now=order_rules.LATER)  # fmt: skip
    [event] = change.events
    draft = emails.email_for_cancellation(event, OrderCancelled.model_validate(event.data))
    assert draft is not None
    email_ = rendered(draft)
    assert wording in " ".join(email_.text.split())
    assert wording.split(" 199")[0] in " ".join(email_.html.split())
    refund_paragraph = " ".join(email_.text.split("Mug x 2")[1].split())
    assert not_said not in refund_paragraph.replace(wording, "")


def test_html_escapes_what_comes_from_data() -> None:
    [draft] = drafts_for()
    draft.context["customer_name"] = "<script>alert(1)</script>"
    email_ = rendered(draft)
    assert "<script>" not in email_.html and "&lt;script&gt;" in email_.html
    assert "<script>" in email_.text  # plain text is not HTML


def test_a_shop_restyles_by_overriding_only_some_files(tmp_path: Path) -> None:
    (tmp_path / "shipping_confirmation.subject.txt").write_text("{{ shop_name }}: parcel for {{ order_ref }}\n")
    (tmp_path / "layout.html").write_text("<div class=brand>{% block content %}{% endblock %}</div>\n")
    [draft] = drafts_for()
    email_ = EmailTemplates(tmp_path, shop_name="Brand").render(draft.kind, draft.context)
    assert email_.subject == "Brand: parcel for #5E2F0C1A"
    assert email_.html.startswith("<div class=brand>") and "1Z999AA10123456784" in email_.html
    assert "Good news" in email_.text  # the built-in text template still applies


def message_for(draft: emails.EmailDraft) -> EmailMessage:
    email_ = rendered(draft)
    msg_id = notification.message_id(draft.notification_id, "shop.example")
    change = notification.record_pending(None, draft, email_, msg_id, NOW)
    assert change is not None
    return build_message(CONFIG, change.document)


def test_the_message_is_multipart_alternative_text_then_html_with_stable_headers() -> None:
    [draft] = drafts_for(lines=[MUG])
    message = message_for(draft)
    parsed = email.message_from_bytes(message.as_bytes(), policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["To"] == "Ada Buyer <buyer@example.com>"
    assert parsed["From"] == "Mugs & Books <orders@shop.example>"
    assert parsed["Subject"] == "Your order #5E2F0C1A is on its way"
    assert parsed["Auto-Submitted"] == "auto-generated"
    again = message_for(draft)
    assert (again["Message-ID"], again["Date"]) == (message["Message-ID"], message["Date"])


@pytest.mark.parametrize(
    ("address", "to"),
    [
        ("ada@例子.广告", "Ada Buyer <ada@xn--fsqu00a.xn--4rr70v>"),  # any server takes the IDNA form
        ("用户@例子.广告", "Ada Buyer <用户@例子.广告>"),  # needs SMTPUTF8 (the server says whether it has it)
        ("Ada@Example.COM", "Ada Buyer <Ada@example.com>"),
    ],
)
def test_an_internationalised_address_builds_a_message(address: str, to: str) -> None:
    """Issue #8: building the email for `用户@例子.广告` raised UnicodeEncodeError."""
    [draft] = drafts_for(lines=[MUG])
    email_ = rendered(draft)
    change = notification.record_pending(None, draft, email_, "<m@shop.example>", NOW)
    assert change is not None
    message = build_message(CONFIG, change.document.model_copy(update={"to": address}))
    assert str(message["To"]) == to


def test_an_address_that_is_no_address_is_a_permanent_failure() -> None:
    [draft] = drafts_for(lines=[MUG])
    change = notification.record_pending(None, draft, rendered(draft), "<m@shop.example>", NOW)
    assert change is not None
    with pytest.raises(SendFailed) as failed:
        build_message(CONFIG, change.document.model_copy(update={"to": "not an address"}))
    assert failed.value.permanent and "not a valid email address" in failed.value.reason


def test_server_replies_are_kept_without_addresses() -> None:
    assert redact("550 5.1.1 <buyer@example.com>: Recipient address rejected") == (
        "550 5.1.1 <address>: Recipient address rejected"
    )
    assert redact("550-5.1.1 first line\r\n550 5.1.1 \x1b[2Jsecond") == "550-5.1.1 first line 550 5.1.1 [2Jsecond"
