"""Notifications over the whole stack: events on Kafka in, real SMTP out (aiosmtpd in this
process), download links followed over HTTP.

The fulfillment events are produced here (the fulfillment service's own flows are tested
with it); the orders exist in the orders service, so its timeline shows the outcomes.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from deploy.local_stack import LocalStack
from deploy.smtp_sink import Received, SmtpSink
from services.notifications.tokens import DownloadClaims, DownloadTokens
from shared.catalog import (
    FinancialStatus,
    FulfillmentChanged,
    FulfillmentLine,
    FulfillmentOrderLine,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    FulfillmentSnapshot,
    OrderCancelled,
    OrderSnapshot,
    Tracking,
)
from shared.events import CloudEvent, new_event
from shared.store import now_iso
from tests.conftest import TEST_ENV, eventually
from tests.event_data import data_of
from tests.kafka_tools import TopicReader, produce_raw

pytestmark = pytest.mark.e2e

EBOOK_URL = "https://cdn.example.com/books/e-book.pdf"
UPS_LINK = "https://www.ups.com/track?tracknum=1Z999AA10123456784"


def recipient(kind: str = "buyer") -> str:
    """A fresh address per test: the SMTP server is shared by the whole session."""
    return f"{kind}+{uuid.uuid4().hex[:10]}@example.com"


async def place_order(stack: LocalStack, http: httpx.AsyncClient, email: str, digital: bool = False) -> OrderSnapshot:
    lines: list[dict[str, Any]] = [{"sku": "MUG-1", "title": "Mug", "quantity": 2, "unit_price": "99.50"}]
    if digital:
        lines.append({"sku": "EBOOK-1", "title": "E-book", "quantity": 1, "unit_price": "50.00",
                      "requires_shipping": False, "digital_asset_url": EBOOK_URL})  # fmt: skip
    body = {
        "customer": {"email": email, "name": "Ada Buyer"},
        "shipping_address": {"name": "Ada Buyer", "address1": "Storgatan 1", "city": "Stockholm",
                             "zip": "11122", "country_code": "SE"},
        "currency": "SEK",
        "financial_status": "pending",  # nothing else acts on it: these tests produce the events
        "line_items": lines,
    }  # fmt: skip
    reply = await http.post(stack.url("orders") + "/orders", json=body)
    assert reply.status_code == 201, reply.text
    return OrderSnapshot.model_validate(reply.json())


def fulfillment_event(
    order: OrderSnapshot,
    event_type: str = "fulfillment.created",
    skus: tuple[str, ...] = ("MUG-1",),
    notify: bool = True,
    tracking: Tracking | None = None,
    fulfillment_id: str | None = None,
) -> CloudEvent:
    lines = [line for line in order.line_items if line.sku in skus]
    now = now_iso()
    fulfillment = FulfillmentSnapshot(
        id=fulfillment_id or str(uuid.uuid4()), order_id=order.id, fulfillment_order_id=f"fo-{order.id}",
        location_id="loc-1", status="SUCCESS", notify_customer=notify, created_at=now, updated_at=now,
        line_items=[FulfillmentLine(line_item_id=line.id, sku=line.sku, quantity=line.quantity,
                                    digital_asset_url=line.digital_asset_url) for line in lines],
        tracking=tracking or Tracking(numbers=["1Z999AA10123456784"], company="UPS", urls=[UPS_LINK]),
    )  # fmt: skip
    fulfillment_order = FulfillmentOrderSnapshot(
        id=f"fo-{order.id}", order_id=order.id, location_id="loc-1", status=FulfillmentOrderStatus.CLOSED,
        created_at=now, updated_at=now,
        line_items=[FulfillmentOrderLine(line_item_id=line.id, sku=line.sku, quantity=line.quantity,
                                         fulfilled_quantity=line.quantity) for line in lines],
    )  # fmt: skip
    changed = FulfillmentChanged(fulfillment=fulfillment, fulfillment_order=fulfillment_order, order=order)
    return new_event("fulfillment", event_type, order.id, changed)


async def publish(stack: LocalStack, event: CloudEvent) -> None:
    await produce_raw(stack.kafka_bootstrap, event.spec.topic.name, event.to_bytes(), key=event.subject.encode())


def mail_to(sink: SmtpSink, address: str) -> list[Received]:
    return [m for m in sink.messages() if address in m.rcpt_tos]


def text_of(received: Received) -> str:
    body = received.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(received: Received) -> str:
    body = received.message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


async def listed(stack: LocalStack, http: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    reply = await http.get(stack.url("notifications") + "/notifications", params={"order_id": order_id})
    assert reply.status_code == 200, reply.text
    return list(reply.json()["items"])


async def timeline(stack: LocalStack, http: httpx.AsyncClient, order_id: str) -> list[str]:
    body = (await http.get(f"{stack.url('orders')}/orders/{order_id}")).json()
    return [entry["type"] for entry in body["timeline"]]


async def test_a_shipping_confirmation_arrives_with_items_carrier_tracking_and_links(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address)
    await publish(stack, fulfillment_event(order))

    [mail] = await eventually(lambda: mail_to(smtp_sink, address), timeout=30)
    message = mail.message
    assert message["To"] == f"Ada Buyer <{address}>"
    assert order.number is not None
    assert message["Subject"] == f"Your order #{order.number} is on its way"  # its number, not its id
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = text_of(mail), html_of(mail)
    assert "Mug x 2" in text and "Carrier: UPS" in text
    assert "Tracking number: 1Z999AA10123456784" in text and UPS_LINK in text
    assert f'href="{UPS_LINK}"' in html and "1Z999AA10123456784" in html

    [notification] = await eventually(lambda: _sent_only(stack, http, order.id), timeout=20)
    assert notification["type"] == "shipping_confirmation"
    assert notification["to"] == address and notification["subject"] == message["Subject"]
    assert notification["sent_at"]
    # the orders service shows it on the order's timeline
    await eventually(lambda: _has(timeline(stack, http, order.id), "notification.sent"), timeout=20)


async def _sent_only(stack: LocalStack, http: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    items = await listed(stack, http, order_id)
    return items if items and all(item["status"] == "sent" for item in items) else []


async def _has(types: Any, wanted: str) -> bool:
    return wanted in await types


async def test_the_download_link_in_the_email_redirects_is_counted_and_refuses_tampering_and_expiry(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address, digital=True)
    # a mixed fulfillment without notify_customer: no shipping confirmation, but the links still go out
    await publish(stack, fulfillment_event(order, skus=("MUG-1", "EBOOK-1"), notify=False))

    [mail] = await eventually(lambda: mail_to(smtp_sink, address), timeout=30)
    assert mail.message["Subject"].startswith("Your downloads for order #")
    [link] = re.findall(r"http://\S+/downloads/\S+", text_of(mail))
    assert f'href="{link}"' in html_of(mail)
    assert link.startswith(stack.url("notifications") + "/downloads/")

    # the link verifies and redirects to the asset, as many times as the cap allows (3 in the tests)
    for _ in range(3):
        reply = await http.get(link, follow_redirects=False)
        assert reply.status_code == 302, reply.text
        assert reply.headers["location"] == EBOOK_URL
    spent = await http.get(link)
    assert spent.status_code == 410 and spent.json()["error"]["code"] == "download_limit_reached"

    token = urlsplit(link).path.rsplit("/", 1)[1]
    body, signature = token.split(".")
    tampered = f"{body[:-1]}{'B' if body[-1] == 'A' else 'A'}.{signature}"
    refused = await http.get(f"{stack.url('notifications')}/downloads/{tampered}")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "invalid_download_link"

    # the same link, genuinely signed (the tests know the secret) but past its time
    tokens = DownloadTokens(TEST_ENV["DOWNLOAD_LINK_SECRET"].encode())
    claims = tokens.verify(token, datetime.now(UTC))
    expired = tokens.sign(DownloadClaims(**{**claims.__dict__, "exp": claims.exp - 8 * 24 * 3600}))
    gone = await http.get(f"{stack.url('notifications')}/downloads/{expired}")
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "download_link_expired"
    assert "expired on" in gone.json()["error"]["message"]

    [notification] = await listed(stack, http, order.id)
    assert notification["type"] == "download_links"


async def test_a_tracking_change_sends_a_shipping_update_with_the_new_number(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address)
    created = fulfillment_event(order)
    await publish(stack, created)
    fulfillment_id = data_of(created)["fulfillment"]["id"]
    new_tracking = Tracking(numbers=["9400111899223100000000"], company="USPS")
    await publish(stack, fulfillment_event(order, "fulfillment.tracking_updated", tracking=new_tracking,
                                           fulfillment_id=fulfillment_id))  # fmt: skip

    mails = await eventually(lambda: len(mail_to(smtp_sink, address)) == 2 and mail_to(smtp_sink, address), 30)
    [update] = [m for m in mails if m.message["Subject"].startswith("Tracking update")]
    text = text_of(update)
    assert "Tracking number: 9400111899223100000000" in text
    assert "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223100000000" in text
    types = sorted(n["type"] for n in await listed(stack, http, order.id))
    assert types == ["shipping_confirmation", "shipping_update"]


async def test_a_cancellation_with_notify_customer_says_the_refund_comes_now(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address)
    paid = order.model_copy(
        update={"financial_status": FinancialStatus.PAID, "cancelled_at": now_iso(), "cancel_reason": "customer"}
    )
    quiet = OrderCancelled(order=paid, refund="now", refunded=True, restock=False, notify_customer=False,
                           reason="customer")  # fmt: skip
    told = quiet.model_copy(update={"notify_customer": True})
    # the first one asks for no email; the second (same key, so consumed after it) does
    await publish(stack, new_event("orders", "order.cancelled", order.id, quiet))
    await publish(stack, new_event("orders", "order.cancelled", order.id, told))

    [mail] = await eventually(lambda: mail_to(smtp_sink, address), timeout=30)
    assert mail.message["Subject"].endswith("has been cancelled")
    text = text_of(mail)
    assert "We have refunded 199.00 SEK to your original payment method" in text
    assert "Mug x 2" in text
    await eventually(lambda: _sent_only(stack, http, order.id), timeout=20)
    assert [n["type"] for n in await listed(stack, http, order.id)] == ["order_cancelled"]


@pytest.mark.parametrize("refund", ["now", "later"])
async def test_a_false_promise_an_order_never_paid_cancelled_with_a_refund_promises_none(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink, refund: str
) -> None:
    """Issue 11, "a false promise": cancelling an order that was never paid with `refund: now` (or
    `later`) sent an email promising a refund. The email follows what happened to the money: the
    orders service cancels it over HTTP (voided, nothing refunded) and the buyer reads so."""
    address = recipient()
    order = await place_order(stack, http, address)
    cancel = {"refund": refund, "restock": True, "notify_customer": True, "reason": "customer"}
    reply = await http.post(f"{stack.url('orders')}/orders/{order.id}/cancel", json=cancel)
    assert reply.status_code == 200, reply.text
    assert reply.json()["financial_status"] == "voided"

    [mail] = await eventually(lambda: mail_to(smtp_sink, address), timeout=30)
    text, html = " ".join(text_of(mail).split()), " ".join(html_of(mail).split())
    for body in (text, html):
        assert "You were not charged for this order, so there is nothing to refund." in body
        assert "refunding" not in body and "refunded" not in body and "refund of" not in body


async def test_the_same_fulfillment_event_delivered_three_times_sends_one_email(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address)
    event = fulfillment_event(order)
    for _ in range(3):
        await publish(stack, event)
    # A later event on the same key (so the same partition, consumed after the three) marks the end.
    marker = fulfillment_event(
        order, "fulfillment.tracking_updated", fulfillment_id=data_of(event)["fulfillment"]["id"]
    )
    await publish(stack, marker)

    def subjects() -> list[str]:
        return sorted(m.message["Subject"].split(" ")[0] for m in mail_to(smtp_sink, address))

    await eventually(lambda: "Tracking" in subjects(), timeout=30)
    await eventually(lambda: _sent_only(stack, http, order.id), timeout=20)
    assert subjects() == ["Tracking", "Your"]  # one update, one confirmation, not three
    assert len(await listed(stack, http, order.id)) == 2


async def test_while_the_smtp_server_is_down_the_email_waits_and_arrives_once_when_it_is_back(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address)
    smtp_sink.stop()
    try:
        await publish(stack, fulfillment_event(order))

        async def retrying() -> bool:
            items = await listed(stack, http, order.id)
            return bool(items and items[0]["status"] == "pending" and items[0]["attempts"] >= 2)

        await eventually(retrying, timeout=30)
        [waiting] = await listed(stack, http, order.id)
        assert "unreachable" in waiting["error"]
    finally:
        smtp_sink.start()
    await eventually(lambda: mail_to(smtp_sink, address), timeout=30)
    [notification] = await eventually(lambda: _sent_only(stack, http, order.id), timeout=20)
    assert notification["attempts"] >= 2
    assert len(mail_to(smtp_sink, address)) == 1


async def test_a_refused_recipient_is_recorded_failed_and_announced(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient("bounce")  # the sink refuses bounce+...@ for good (550)
    order = await place_order(stack, http, address)
    async with TopicReader(stack.kafka_bootstrap, "notifications.events.v1") as kafka:
        await publish(stack, fulfillment_event(order))
        [failed] = await eventually(lambda: kafka.events(order.id, "notifications.events.v1"), timeout=30)
    assert failed["type"] == "notification.failed"
    record = failed["data"]["notification"]
    assert record["status"] == "failed" and record["error"].startswith("recipient refused: 550")
    [notification] = await listed(stack, http, order.id)
    assert notification["status"] == "failed" and notification["attempts"] == 1
    assert mail_to(smtp_sink, address) == []
    await eventually(lambda: _has(timeline(stack, http, order.id), "notification.failed"), timeout=20)


async def test_a_deferring_server_is_retried_until_the_attempts_run_out_then_it_fails(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient("defer")  # the sink answers 451 (try later) for defer+...@, always
    order = await place_order(stack, http, address)
    await publish(stack, fulfillment_event(order))

    async def failed() -> list[dict[str, Any]]:
        items = await listed(stack, http, order.id)
        return items if items and items[0]["status"] == "failed" else []

    [notification] = await eventually(failed, timeout=60)
    assert notification["attempts"] == int(TEST_ENV["NOTIFY_MAX_ATTEMPTS"])
    assert notification["error"].startswith("recipient refused: 451")
    assert address not in notification["error"]


async def test_a_malformed_event_is_dead_lettered_and_the_next_one_is_emailed(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address)
    good = fulfillment_event(order)
    bad = json.loads(good.to_bytes())
    bad["id"] = str(uuid.uuid4())
    del bad["data"]["fulfillment"]["line_items"]
    async with TopicReader(stack.kafka_bootstrap, "fulfillment.events.v1.dlq") as kafka:
        await produce_raw(stack.kafka_bootstrap, "fulfillment.events.v1", json.dumps(bad).encode(), order.id.encode())
        await publish(stack, good)
        await eventually(lambda: mail_to(smtp_sink, address), timeout=30)

        def dead_lettered_by_notifications() -> list[Any]:
            return [r for r in kafka.records if r.key == order.id.encode()
                    and ("x-dlq-consumer-group", b"notifications") in r.headers]  # fmt: skip

        await eventually(dead_lettered_by_notifications, timeout=20)


async def test_a_killed_and_restarted_service_loses_no_email_and_repeats_only_those_in_flight(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    address = recipient()
    order = await place_order(stack, http, address)
    events = [fulfillment_event(order) for _ in range(60)]
    for event in events:
        await publish(stack, event)
    await eventually(lambda: mail_to(smtp_sink, address), timeout=30)
    [service] = [child for child in stack.children if child.name == "notifications"]
    stack.kill_child(service)  # SIGKILL: no shutdown hooks, sends cut short, offsets maybe not committed
    stack.start_service("notifications")
    stack.wait_until_ready(60)

    def message_ids() -> list[str]:
        return [m.message["Message-ID"] for m in mail_to(smtp_sink, address)]

    await eventually(lambda: len(set(message_ids())) == len(events), timeout=60)
    await eventually(lambda: _all_sent(stack, http, order.id, len(events)), timeout=30)
    # At least once: a send the SMTP server accepted just before the kill, but that was not
    # yet recorded, goes again with the same Message-ID; at most one per sender then at work.
    repeats = len(message_ids()) - len(set(message_ids()))
    assert repeats <= int(stack.service_env("notifications", 0).get("NOTIFY_SEND_CONCURRENCY", "4"))


async def _all_sent(stack: LocalStack, http: httpx.AsyncClient, order_id: str, count: int) -> bool:
    items = await listed(stack, http, order_id)
    return len(items) == count and all(item["status"] == "sent" for item in items)
