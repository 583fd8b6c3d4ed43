"""Delivery against a real store (nx-27017) and a real SMTP server (aiosmtpd) in this process:
one email per event, at least once across a crash, retried while the server is down, refused
for good on a 5xx; and the download links those emails carry, followed over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from deploy.local_stack import free_port
from deploy.smtp_sink import SmtpSink
from services.notifications import store
from services.notifications.api import MAX_LISTED, build_router
from services.notifications.app import NotificationsSettings, bootstrap
from services.notifications.application import Delivery
from services.notifications.domain import emails
from services.notifications.domain.download_link import DownloadLink
from services.notifications.domain.notification import Notification, RetryPolicy
from services.notifications.mailer import Mailer, SmtpConfig
from services.notifications.tokens import DownloadClaims, DownloadTokens
from shared.catalog import NotificationOutcome
from shared.clock import now as utcnow
from shared.http import install_error_handlers
from shared.store import AggregateStore, Document
from tests.conftest import eventually
from tests.integration.test_orders_at_scale import Commands, create_indexes, merchant_app
from tests.unit.test_notification_rules import BOOK, LINK_SECRET, LINKS, MUG, NOW, fulfillment_event

POLICY = RetryPolicy(max_attempts=4, backoff=timedelta(seconds=0.2), max_backoff=timedelta(seconds=0.5),
                     claim=timedelta(seconds=1))  # fmt: skip
"""What settings_for sets: four attempts, quick backoff, a one-second claim."""


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


Stores = tuple[AggregateStore[Notification], AggregateStore[DownloadLink]]


def stores_in(database: AsyncDatabase[Document]) -> Stores:
    return (
        AggregateStore(database["notifications"], lambda *_: None, mapping=store.NOTIFICATIONS),
        AggregateStore(database["downloads"], lambda *_: None, mapping=store.DOWNLOAD_LINKS),
    )


@pytest.fixture
async def stores(mongo_uri: str) -> AsyncIterator[Stores]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_uri, tz_aware=True)
    database = client[f"notifications_{uuid.uuid4().hex[:8]}"]
    try:
        yield stores_in(database)
    finally:
        await client.drop_database(database.name)
        await client.close()


def settings_for(sink: SmtpSink) -> NotificationsSettings:
    """The service's settings for these tests: the sink as SMTP server, quick retries (POLICY),
    links as the rule tests make them (LINKS)."""
    return NotificationsSettings(
        smtp_port=sink.port, smtp_timeout_seconds=2, mail_from="Shop <orders@shop.example>",
        public_base_url="https://shop.example/", download_link_secret=SecretStr(LINK_SECRET),
        download_link_ttl_seconds=int(LINKS.lifetime.total_seconds()),
        download_link_max_downloads=LINKS.max_downloads or 0,
        notify_max_attempts=4, notify_retry_backoff_seconds=0.2, notify_retry_max_backoff_seconds=0.5,
        notify_claim_seconds=1, notify_send_concurrency=2, notify_sweep_seconds=0.1,
    )  # fmt: skip


def delivery_for(stores: Stores, sink: SmtpSink, mailer: Mailer | None = None) -> Delivery:
    """The service's application object, as the service builds it (app.bootstrap)."""
    notifications, downloads = stores
    delivery = bootstrap(settings_for(sink), notifications, downloads, CollectorRegistry(), mailer=mailer)
    assert (delivery.policy, delivery.links.url("t")) == (POLICY, LINKS.url("t"))
    return delivery


def drafts(
    lines: Any = None, notify: bool = True, to: str | None = None, now: datetime = NOW
) -> list[emails.EmailDraft]:
    event, changed = fulfillment_event(lines=lines or [MUG], notify=notify)
    if to:
        changed = changed.model_copy(
            update={
                "order": changed.order.model_copy(
                    update={"customer": changed.order.customer.model_copy(update={"email": to})}
                )
            }
        )
    return emails.emails_for_fulfillment(event, changed, LINKS, now)


def _plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def outbox_types(store: AggregateStore[Notification], notification_id: str) -> list[str]:
    raw = await store.collection.find_one({"_id": notification_id})
    assert raw is not None
    return [entry["event"]["type"] for entry in raw.get("outbox", {}).values()]


async def stored(store: AggregateStore[Notification], notification_id: str) -> Notification:
    notification = await store.get(notification_id)
    assert notification is not None
    return notification


async def test_an_email_is_recorded_sent_and_announced_in_one_write(stores: Stores, sink: SmtpSink) -> None:
    delivery = delivery_for(stores, sink)
    [draft] = drafts()
    await delivery.record([draft])
    sent = await delivery.deliver(draft.notification_id)
    assert sent is not None and sent.status == "sent" and sent.attempts == 1
    [received] = sink.messages()
    assert received.rcpt_tos == ["buyer@example.com"]
    assert received.message["Subject"] == "Your order #5E2F0C1A is on its way"
    assert received.message["Message-ID"] == sent.message_id
    assert "1Z999AA10123456784" in _plain(received.message)
    raw = await stores[0].collection.find_one({"_id": draft.notification_id})
    assert raw is not None
    [event] = list(raw["outbox"].values())
    record = NotificationOutcome.model_validate(event["event"]["data"]).notification
    assert (record.id, record.status, record.to) == (draft.notification_id, "sent", "buyer@example.com")


async def test_recording_the_same_event_again_sends_nothing_more(stores: Stores, sink: SmtpSink) -> None:
    delivery = delivery_for(stores, sink)
    both = drafts(lines=[MUG, BOOK])
    for _ in range(3):  # the same event, redelivered
        await delivery.record(both)
    for draft in both:
        await delivery.deliver(draft.notification_id)
        assert await delivery.deliver(draft.notification_id) is None
    assert sorted(m.message["Subject"] for m in sink.messages()) == [
        "Your downloads for order #5E2F0C1A", "Your order #5E2F0C1A is on its way",
    ]  # fmt: skip
    assert len(await stores[0].find({"order_id": both[0].order_id})) == 2
    assert len(await stores[1].find({})) == 1  # one download grant, for the one digital line


class CrashAfterSending(Mailer):
    """Sends, then dies before the outcome can be recorded (like a process killed right after the 250)."""

    async def send(self, message: EmailMessage) -> None:
        await super().send(message)
        raise KeyboardInterrupt


async def test_a_crash_between_sending_and_recording_sends_again_with_the_same_message_id(
    stores: Stores, sink: SmtpSink
) -> None:
    config = SmtpConfig("127.0.0.1", sink.port, timeout_seconds=2)
    [draft] = drafts()
    crashing = delivery_for(stores, sink, CrashAfterSending(config))
    await crashing.record([draft])
    with pytest.raises(KeyboardInterrupt):
        await crashing.deliver(draft.notification_id)
    assert (await stored(stores[0], draft.notification_id)).status == "pending"
    # A restarted (or another) replica: nothing to do until the crashed attempt's claim runs out ...
    restarted = delivery_for(stores, sink)
    assert await restarted.deliver(draft.notification_id) is None
    # ... then the sweep finds it and sends it again: at least once, recognisably the same message.
    await eventually(restarted.sweep_once, timeout=5)
    sent = await restarted.deliver(draft.notification_id)
    assert sent is not None and sent.status == "sent" and sent.attempts == 2
    first, second = sink.messages()
    assert first.message["Message-ID"] == second.message["Message-ID"] == sent.message_id
    assert first.message["Date"] == second.message["Date"]


async def test_while_the_server_is_down_attempts_back_off_and_the_email_arrives_once_when_it_is_back(
    stores: Stores, sink: SmtpSink
) -> None:
    delivery = delivery_for(stores, sink)
    sink.stop()
    delivery.start()
    try:
        [draft] = drafts()
        await delivery.record([draft])

        async def retried() -> bool:
            notification = await stored(stores[0], draft.notification_id)
            return bool(notification.attempts >= 2 and notification.status == "pending")

        await eventually(retried, timeout=10)
        assert "unreachable" in ((await stored(stores[0], draft.notification_id)).error or "")
        sink.start()
        await eventually(lambda: sink.messages(), timeout=10)
        notification = await eventually(lambda: _sent(stores[0], draft.notification_id), timeout=10)
        assert notification.error is None
    finally:
        await delivery.stop()
    assert len(sink.messages()) == 1


async def _sent(store: AggregateStore[Notification], notification_id: str) -> Notification | None:
    notification = await store.get(notification_id)
    return notification if notification and notification.status == "sent" else None


async def test_a_permanent_refusal_fails_at_once_and_announces_it(stores: Stores, sink: SmtpSink) -> None:
    delivery = delivery_for(stores, sink)
    [draft] = drafts(to="bounce+nobody@example.com")
    await delivery.record([draft])
    failed = await delivery.deliver(draft.notification_id)
    assert failed is not None and failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and failed.error.startswith("recipient refused: 550")
    assert "bounce+nobody" not in failed.error
    assert await outbox_types(stores[0], draft.notification_id) == ["notification.failed"]
    assert sink.messages() == []


async def test_passing_failures_give_up_after_the_last_attempt(stores: Stores, sink: SmtpSink) -> None:
    delivery = delivery_for(stores, sink)
    delivery.start()
    try:
        [draft] = drafts(to="defer+someone@example.com")
        await delivery.record([draft])
        failed = await eventually(lambda: _with_status(stores[0], draft.notification_id, "failed"), timeout=15)
    finally:
        await delivery.stop()
    assert failed.attempts == POLICY.max_attempts
    assert failed.error is not None and failed.error.startswith("recipient refused: 451")
    assert await outbox_types(stores[0], draft.notification_id) == ["notification.failed"]


async def _with_status(store: AggregateStore[Notification], notification_id: str, status: str) -> Notification | None:
    notification = await store.get(notification_id)
    return notification if notification and notification.status == status else None


# --- issue #8: an internationalised address never failed and never sent ---------------------

INTERNATIONAL = "用户@例子.广告"


async def test_an_internationalised_address_is_sent_with_smtputf8(stores: Stores, sink: SmtpSink) -> None:
    """`用户@例子.广告` was accepted, building the email raised UnicodeEncodeError and the
    notification stayed pending forever. A server that offers SMTPUTF8 (the local sink does,
    as current servers do) gets it."""
    assert sink.smtputf8
    delivery = delivery_for(stores, sink)
    [draft] = drafts(to=INTERNATIONAL)
    await delivery.record([draft])
    sent = await delivery.deliver(draft.notification_id)
    assert sent is not None and (sent.status, sent.attempts, sent.to) == ("sent", 1, INTERNATIONAL)
    [received] = sink.messages()
    assert received.rcpt_tos == [INTERNATIONAL]
    assert f"To: Ada Buyer <{INTERNATIONAL}>".encode() in received.raw  # UTF-8 headers, as RFC 6532 has them
    assert "1Z999AA10123456784" in _plain(received.message)


async def test_an_internationalised_address_fails_for_good_when_the_server_has_no_smtputf8(stores: Stores) -> None:
    old = SmtpSink(port=free_port(), smtputf8=False)
    old.start()
    try:
        delivery = delivery_for(stores, old)
        [draft] = drafts(to=INTERNATIONAL)
        await delivery.record([draft])
        failed = await delivery.deliver(draft.notification_id)
    finally:
        old.stop()
    assert failed is not None and (failed.status, failed.attempts) == ("failed", 1)
    assert "does not offer SMTPUTF8" in (failed.error or "")
    assert await outbox_types(stores[0], draft.notification_id) == ["notification.failed"]
    assert old.messages() == []


async def test_an_error_while_building_the_email_counts_as_an_attempt_and_ends_failed(
    stores: Stores, sink: SmtpSink
) -> None:
    """An unexpected error while building an email counts as an attempt and ends failed,
    instead of leaving the notification pending to be retried without end."""
    delivery = delivery_for(stores, sink)
    [draft] = drafts()
    await delivery.record([draft])
    await stores[0].collection.update_one({"_id": draft.notification_id}, {"$set": {"created_at": "not a time"}})
    failed = await delivery.deliver(draft.notification_id)
    assert failed is not None and (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error == "the email could not be built: ValueError"
    assert await outbox_types(stores[0], draft.notification_id) == ["notification.failed"]
    assert await delivery.deliver(draft.notification_id) is None
    assert sink.messages() == []


async def test_two_replicas_racing_for_the_same_notification_send_it_once(stores: Stores, sink: SmtpSink) -> None:
    one, two = delivery_for(stores, sink), delivery_for(stores, sink)
    batch = [draft for _ in range(10) for draft in drafts()]
    await one.record(batch)
    await asyncio.gather(*(replica.deliver(d.notification_id) for d in batch for replica in (one, two)))
    assert len(sink.messages()) == 10
    assert len({m.message["Message-ID"] for m in sink.messages()}) == 10


# --- download links, followed over HTTP -----------------------------------------------------


@pytest.fixture
async def shop(stores: Stores, sink: SmtpSink) -> AsyncIterator[tuple[Delivery, httpx.AsyncClient]]:
    delivery = delivery_for(stores, sink)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_router(delivery))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://shop.example") as client:
        yield delivery, client


async def emailed_links(delivery: Delivery, sink: SmtpSink) -> list[str]:
    [draft] = drafts(lines=[BOOK], notify=False, now=utcnow())
    await delivery.record([draft])
    await delivery.deliver(draft.notification_id)
    [received] = sink.messages()
    text = _plain(received.message)
    return [word for word in text.split() if word.startswith("https://shop.example/downloads/")]


async def test_the_emailed_link_redirects_to_the_asset_and_counts_up_to_its_cap(shop: Any, sink: SmtpSink) -> None:
    delivery, client = shop
    [link] = await emailed_links(delivery, sink)
    for _ in range(LINKS.max_downloads or 0):
        reply = await client.get(link)
        assert reply.status_code == 302
        assert reply.headers["location"] == "https://cdn.example.com/e-book.pdf"
        assert reply.headers["cache-control"] == "no-store"
    [grant] = await delivery.downloads.find({})
    assert grant.downloads == LINKS.max_downloads
    spent = await client.get(link)
    assert spent.status_code == 410
    assert spent.json()["error"]["code"] == "download_limit_reached"


async def test_a_tampered_link_is_refused_with_403(shop: Any, sink: SmtpSink) -> None:
    delivery, client = shop
    [link] = await emailed_links(delivery, sink)
    body, signature = link.rsplit("/", 1)[1].split(".")
    tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    reply = await client.get(f"/downloads/{tampered}")
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "invalid_download_link"
    assert "not valid" in reply.json()["error"]["message"]
    assert (await client.get("/downloads/not-a-token")).status_code == 403


async def test_an_expired_link_is_refused_with_410_and_says_when(shop: Any, sink: SmtpSink) -> None:
    delivery, client = shop
    [link] = await emailed_links(delivery, sink)
    claims = LINKS.tokens.verify(link.rsplit("/", 1)[1], utcnow())
    yesterday = utcnow() - timedelta(days=1)
    expired = LINKS.tokens.sign(DownloadClaims(**{**claims.__dict__, "exp": int(yesterday.timestamp())}))
    reply = await client.get(f"/downloads/{expired}")
    assert reply.status_code == 410
    error = reply.json()["error"]
    assert error["code"] == "download_link_expired"
    assert f"expired on {yesterday:%d %B %Y}" in error["message"]
    # signed with another secret, the same claims are not the shop's
    foreign = DownloadTokens(b"someone-else-secret-0123456789ab").sign(claims)
    assert (await client.get(f"/downloads/{foreign}")).status_code == 403


# --- what one email costs the store, and the queries that find work (issue 15, Scale) --------------


@pytest.fixture
async def counted(mongo_uri: str) -> AsyncIterator[tuple[Stores, Commands, Any]]:
    """Stores whose every command is recorded, with the service's indexes."""
    commands = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[commands])
    database = client[f"notifications_{uuid.uuid4().hex[:8]}"]
    await create_indexes(database, store.INDEXES)
    try:
        yield stores_in(database), commands, database
    finally:
        await client.drop_database(database.name)
        await client.close()


async def test_one_email_costs_an_insert_a_claim_and_one_write_of_its_outcome(counted: Any, sink: SmtpSink) -> None:
    """Issue 15: notifications made ~22 store commands per order, a read before every write
    (record, claim, outcome) where the document was already in hand or the write could decide."""
    stores, commands, _ = counted
    delivery = delivery_for(stores, sink)
    [shipping, downloads] = drafts(lines=[MUG, BOOK])
    commands.sent.clear()
    await delivery.record([shipping, downloads])
    assert commands.names() == ["insert", "insert", "insert"], "a grant and two notifications, no read first"
    commands.sent.clear()
    sent = await delivery.deliver(shipping.notification_id)
    assert sent is not None and sent.status == "sent"
    assert commands.names() == ["findAndModify", "update"], "claim, then the outcome written on what the claim returned"
    commands.sent.clear()
    await delivery.record([shipping, downloads])  # a redelivery
    assert commands.names() == ["insert", "insert", "insert"], "each refused as a duplicate: nothing changes"
    assert len(sink.messages()) == 1


async def test_the_sweep_finds_due_notifications_by_number_from_an_index(counted: Any, sink: SmtpSink) -> None:
    """The sweep's query ranged over an RFC 3339 string, which the embedded store compares on a
    path that reads every document."""
    stores, commands, database = counted
    delivery = delivery_for(stores, sink)
    [draft] = drafts()
    await delivery.record([draft])
    commands.sent.clear()
    assert await delivery.sweep_once() == 1
    [(name, command)] = commands.sent
    assert name == "find" and command["limit"] == Delivery.SWEEP_BATCH
    query = command["filter"]
    assert query["status"] == {"$eq": "pending"} and set(query["next_attempt_ts"]) == {"$lte"}
    assert isinstance(query["next_attempt_ts"]["$lte"], float) and list(command["sort"]) == ["next_attempt_ts"]
    plan = await database.command("explain", {"find": "notifications", "filter": query})
    assert "USING INDEX" in str(plan["queryPlanner"]["winningPlan"])


async def test_a_notification_pending_from_before_the_numeric_due_time_is_still_swept(
    counted: Any, sink: SmtpSink
) -> None:
    stores, _, database = counted
    delivery = delivery_for(stores, sink)
    [draft] = drafts()
    await delivery.record([draft])
    await stores[0].collection.update_one({"_id": draft.notification_id}, {"$unset": {"next_attempt_ts": ""}})
    assert await delivery.sweep_once() == 0
    assert await store.backfill_next_attempt_ts(database) == 1
    assert await delivery.sweep_once() == 1
    sent = await delivery.deliver(draft.notification_id)
    assert sent is not None and sent.status == "sent"
    assert await store.backfill_next_attempt_ts(database) == 0


async def test_an_orders_emails_are_listed_from_an_index_and_bounded(
    counted: Any, sink: SmtpSink, tmp_path: Path
) -> None:
    stores, commands, database = counted
    delivery = delivery_for(stores, sink)
    both = drafts(lines=[MUG, BOOK])
    await delivery.record(both)
    app, headers = merchant_app(tmp_path, build_router(delivery))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop", headers=headers
    ) as client:
        commands.sent.clear()
        reply = await client.get("/notifications", params={"order_id": both[0].order_id})
    assert reply.status_code == 200 and len(reply.json()["items"]) == 2
    [(name, command)] = commands.sent
    assert name == "find" and command["filter"] == {"order_id": {"$eq": both[0].order_id}}
    assert command["limit"] == MAX_LISTED and list(command["sort"]) == ["created_at"]
    plan = await database.command("explain", {"find": "notifications", "filter": command["filter"]})
    assert "USING INDEX" in str(plan["queryPlanner"]["winningPlan"])
