"""The notifications service's application layer: what the Kafka handlers, the HTTP routes and
the background sender call (load, apply a rule, save; no HTTP, no Kafka). Getting each email
out: recorded before it is sent, sent at least once, retried with backoff; and following the
download links those emails carry.

Why this way (the crash between sending and recording):
1. A Kafka handler only *records* the emails an event asks for: a `pending` notification
   whose id is derived from the triggering event id and the kind of email (and, for
   download links, the download grants). A redelivered event finds the notification there
   and records nothing new. The handler never waits on SMTP, so a slow or absent mail
   server does not hold up the partition.
2. The sender (workers fed by the handler and by a periodic sweep of due `pending`
   notifications) *claims* an attempt by moving the notification's next attempt forward by
   the claim time and counting the attempt, in one conditional write: one replica, one
   attempt. Then it sends, with a Message-ID derived from the notification id. Then it
   records `sent` (or the failure) and, in the same document write, the notification.sent /
   notification.failed event through the store's outbox.

Store round trips per email: the record is one insert (no read first), the claim one
conditional find-and-modify that returns the notification, the outcome one write of the
document the claim returned (a re-read only if someone changed it meanwhile).
3. A crash after the SMTP server accepted the message but before `sent` was recorded
   leaves the notification pending; when the claim runs out the sweep sends it again.
   So delivery to the SMTP server is **at least once**, never zero times: a buyer would
   rather get a rare duplicate shipping confirmation or download link than none, and the
   duplicate has the same Message-ID and Date, so mail systems and people can tell it is
   the same message. The window is the few milliseconds between the server's 250 and our
   write (plus retries of that write), not the whole send.

Retries: a passing failure (4xx, connection refused or dropped, timeout, or an error of
our own while sending) is retried with exponential backoff by the sweep, up to
NOTIFY_MAX_ATTEMPTS; a permanent refusal (5xx, an address the server cannot take, an email
that cannot be built from what was recorded) is not retried. An attempt counts when it is
claimed, so even attempts that never finish (a crash, a hang) are bounded: the claim after
the last one records the notification failed. Either way a notification that will not be sent is recorded `failed` and
notification.failed is emitted. An email that cannot be rendered never gets this far: the
handler fails and the message goes to the dead-letter topic; the consumer carries on.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Iterable
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Histogram
from pymongo.errors import PyMongoError

from services.notifications import store
from services.notifications.domain import download_link, emails, notification
from services.notifications.domain.download_link import DownloadLink, DownloadRefused
from services.notifications.domain.emails import EmailDraft, LinkPolicy
from services.notifications.domain.notification import Notification, RetryPolicy
from services.notifications.mailer import Mailer, SendFailed, build_message
from services.notifications.templates import EmailTemplates
from services.notifications.tokens import ExpiredDownloadToken, InvalidDownloadToken
from shared.catalog import FulfillmentChanged, OrderCancelled
from shared.clock import now as utcnow
from shared.events import CloudEvent
from shared.store import AggregateStore, ConcurrencyConflict, Rule, Stored

log = logging.getLogger(__name__)


def _where(exc: Exception) -> str:
    """An unexpected error's type and where it was raised, without its message (which may
    quote the address or the email)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{type(exc).__name__} at {frames[-1].filename}:{frames[-1].lineno}" if frames else type(exc).__name__


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.recorded = Counter(
            "notifications_recorded", "Emails recorded for sending, by type.", ["type"], registry=registry
        )
        self.attempts = Counter(
            "notification_send_attempts",
            "SMTP send attempts by type and outcome (sent, retry, failed).",
            ["type", "outcome"],
            registry=registry,
        )
        self.send_seconds = Histogram(
            "notification_send_seconds", "Time to hand one email to the SMTP server.", registry=registry
        )
        self.downloads = Counter(
            "downloads", "Download link requests by outcome (redirected, invalid, expired, ...).", ["outcome"],
            registry=registry,
        )  # fmt: skip


class Delivery:
    """Records the emails events ask for and sends them, and lets buyers follow the download
    links those emails carry; see the module docstring for why so."""

    SWEEP_BATCH = 500
    MAX_LISTED = 1_000  # an order is emailed a few times, not thousands: a list never loads more

    def __init__(
        self,
        notifications: AggregateStore[Notification],
        downloads: AggregateStore[DownloadLink],
        templates: EmailTemplates,
        mailer: Mailer,
        links: LinkPolicy,
        policy: RetryPolicy,
        metrics: DeliveryMetrics,
        *,
        concurrency: int = 4,
        sweep_seconds: float = 5.0,
    ) -> None:
        self.notifications = notifications
        self.downloads = downloads
        self.templates = templates
        self.mailer = mailer
        self.links = links
        self.policy = policy
        self.metrics = metrics
        self.concurrency = concurrency
        self.sweep_seconds = sweep_seconds
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._sending: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    # --- recording (called by the Kafka handlers) -------------------------------------

    async def on_fulfillment(self, event: CloudEvent, changed: FulfillmentChanged) -> None:
        """Record the emails a fulfillment.created or fulfillment.tracking_updated event asks for."""
        await self.record(emails.emails_for_fulfillment(event, changed, self.links, utcnow()))

    async def on_order_cancelled(self, event: CloudEvent, cancelled: OrderCancelled) -> None:
        """Record the cancellation notice, if the merchant asked for one."""
        draft = emails.email_for_cancellation(event, cancelled)
        await self.record([draft] if draft else [])

    async def record(self, drafts: Iterable[EmailDraft]) -> None:
        """Make each email durable as `pending` (once per triggering event), then queue it."""
        now = utcnow()
        for draft in drafts:
            for grant in draft.grants:
                opened = download_link.open_grant(None, grant=grant, now=now)
                if opened is not None:
                    await self.downloads.create(grant.token_id, opened)  # None: granted by an earlier delivery
            rendered = self.templates.render(draft.kind, draft.context)
            message_id = notification.message_id(draft.notification_id, self.mailer.config.sender_domain)
            pending = notification.record_pending(None, draft=draft, rendered=rendered, msg_id=message_id, now=now)
            created = await self.notifications.create(draft.notification_id, pending) if pending else None
            if created is not None:
                self.metrics.recorded.labels(draft.kind.value).inc()
            # Queued even when it already existed: a redelivery after a crash speeds it up.
            self.enqueue(draft.notification_id)

    def enqueue(self, notification_id: str) -> None:
        """Queue a notification for an attempt, unless it is queued or being attempted already
        (the sweep finds the ones being sent as due until their claim is written)."""
        if notification_id not in self._queued and notification_id not in self._sending:
            self._queued.add(notification_id)
            self._queue.put_nowait(notification_id)

    # --- sending ----------------------------------------------------------------------

    async def deliver(self, notification_id: str) -> Notification | None:
        """One attempt at one notification, if it is due and nobody else is at it.
        Returns the notification as recorded after the attempt, or None if there was none."""
        now = utcnow()
        claim = await store.claim(self.notifications, notification_id, now, self.policy)
        claimed: Notification | None
        if claim is not None:
            claimed = claim.aggregate
        else:
            # Not claimable in one write: read it, and let the rule say why (out of attempts: failed).
            claimed = await self.notifications.apply(
                notification_id, partial(notification.claim, now=now, policy=self.policy)
            )
        if claimed is None:
            return None  # sent, failed, not due yet, or another sender holds the attempt
        kind = claimed.type.value
        if claimed.status != "pending":  # the attempts ran out without an outcome
            self.metrics.attempts.labels(kind, claimed.status).inc()
            log.warning("notification %s (%s) given up: %s", notification_id, kind, claimed.error)
            return claimed
        started = asyncio.get_running_loop().time()
        failure = await self._attempt(claimed)
        if failure is not None:
            saved = await self._record(
                notification_id,
                partial(notification.record_failure, error=failure.reason, permanent=failure.permanent,
                        now=utcnow(), policy=self.policy),
                claim,
            )  # fmt: skip
            outcome: str = saved.status if saved else "unknown"
            outcome = "retry" if outcome == "pending" else outcome
            self.metrics.attempts.labels(kind, outcome).inc()
            log.warning(
                "notification %s (%s, order %s) attempt %d not sent, %s: %s",
                notification_id, kind, claimed.order_id, claimed.attempts, outcome, failure.reason,
            )  # fmt: skip
            return saved
        self.metrics.send_seconds.observe(asyncio.get_running_loop().time() - started)
        saved = await self._record(notification_id, partial(notification.record_sent, now=utcnow()), claim)
        self.metrics.attempts.labels(kind, "sent").inc()
        journey = {"correlation_id": claimed.trace.correlation_id} if claimed.trace else None
        log.info("notification %s (%s, order %s) sent", notification_id, kind, claimed.order_id, extra=journey)
        return saved

    async def _attempt(self, claimed: Notification) -> SendFailed | None:
        """Build the email and hand it over; why it did not go, or None if it did. An email
        that cannot be built will never be (a permanent failure); an unexpected error while
        sending counts as a passing failure. Either way the attempt is recorded."""
        try:
            message = build_message(self.mailer.config, claimed)
        except SendFailed as failure:
            return failure
        except Exception as exc:
            log.error("notification %s: the email could not be built: %s", claimed.id, _where(exc))
            return SendFailed(f"the email could not be built: {type(exc).__name__}", permanent=True)
        try:
            await self.mailer.send(message)
        except SendFailed as failure:
            return failure
        except Exception as exc:
            log.error("notification %s: unexpected error while sending: %s", claimed.id, _where(exc))
            return SendFailed(f"unexpected error while sending: {type(exc).__name__}", permanent=False)
        return None

    async def _record(
        self, notification_id: str, rule: Rule[Notification], claim: Stored[Notification] | None = None
    ) -> Notification | None:
        """Record an attempt's outcome, trying hard: until it is recorded, a crash resends.
        `claim` holds the notification as the claim left it, so the first try needs no read."""
        for attempt in range(5):
            try:
                if claim is not None and attempt == 0:
                    return await self.notifications.apply_to(claim, rule)
                return await self.notifications.apply(notification_id, rule)
            except (PyMongoError, ConcurrencyConflict):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        return None  # pragma: no cover - the loop returns or raises

    async def sweep_once(self) -> int:
        """Queue the pending notifications whose next attempt is due (retries, and any a
        crashed process left behind)."""
        due = await store.due(self.notifications, utcnow(), self.SWEEP_BATCH)
        for notification_id in due:
            self.enqueue(notification_id)
        return len(due)

    # --- what the HTTP routes ask -----------------------------------------------------

    async def emails_of(self, order_id: str) -> list[Notification]:
        """The emails about an order, oldest first (at most MAX_LISTED)."""
        return await store.emails_of(self.notifications, order_id, self.MAX_LISTED)

    async def download(self, token: str) -> str:
        """Follow a download link: the asset's URL to redirect to, the download counted; or
        DownloadRefused saying why not."""
        now = utcnow()
        try:
            claims = self.links.tokens.verify(token, now)
        except InvalidDownloadToken:
            self.metrics.downloads.labels("invalid").inc()
            raise download_link.invalid_link() from None
        except ExpiredDownloadToken as expired:
            self.metrics.downloads.labels("expired").inc()
            raise download_link.expired_link(expired.claims.expires_at) from None
        try:
            link = await self.downloads.apply(claims.jti, partial(download_link.count_download, claims=claims, now=now))
        except DownloadRefused as refused:
            self.metrics.downloads.labels(refused.code).inc()
            if refused.internal_reason:
                log.warning("download of order %s refused: %s", claims.order_id, refused.internal_reason)
            raise
        assert link is not None  # count_download always changes the link or refuses
        self.metrics.downloads.labels("redirected").inc()
        return link.asset_url

    # --- running alongside the service -------------------------------------------------

    async def run(self) -> None:
        """Send until cancelled (the runtime runs this as a background task); when cancelled,
        let the sends under way finish and be recorded, so a shutdown resends nothing."""
        self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"email-sender-{n}") for n in range(self.concurrency)]
        self._workers.append(asyncio.create_task(self._sweep(), name="email-sweep"))

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the sends under way finish (so they get recorded), then stop."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._workers = []

    async def _work(self) -> None:
        while True:
            notification_id = await self._queue.get()
            self._queued.discard(notification_id)
            self._sending.add(notification_id)
            task = asyncio.create_task(self._deliver_logged(notification_id))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            # Shielded: stopping the worker lets this send finish and be recorded.
            await asyncio.shield(task)

    async def _deliver_logged(self, notification_id: str) -> None:
        try:
            await self.deliver(notification_id)
        except Exception:
            log.exception("delivering notification %s failed; the sweep will try again", notification_id)
        finally:
            self._sending.discard(notification_id)

    async def _sweep(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep of pending notifications failed; trying again")
            await asyncio.sleep(self.sweep_seconds)
