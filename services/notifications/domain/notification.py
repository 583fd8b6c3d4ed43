"""A notification's life: recorded `pending`, then `sent` or `failed`; rules without I/O.

A notification is one email to one buyer, recorded before it is sent under an id derived from
the triggering event and the kind of email (emails.notification_id), so a redelivered event
finds it there: one email per event. It is `pending` until the SMTP server accepted it (`sent`)
or delivery was given up (`failed`); sent and failed are announced in the same write
(notification.sent / notification.failed through the store's outbox). Each send attempt is
claimed first (`claim`), which counts it: even attempts that never finish are bounded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.notifications.domain.emails import EmailDraft, EmailKind
from shared.aggregates import Change
from shared.catalog import NotificationOutcome, NotificationRecord
from shared.clock import epoch, iso
from shared.events import CloudEvent, Trace, current_trace, new_event
from shared.text import one_line

SOURCE = "notifications"
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1f6d1e-5b7a-4c55-9d7e-0b3c2a7e9a10")

Status = Literal["pending", "sent", "failed"]


class Notification(BaseModel):
    """One email to send, as recorded: what it says (rendered once, when recorded, so every
    attempt sends the same message), to whom, and how its delivery is going."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    order_id: str
    type: EmailKind
    to: str
    to_name: str | None = None
    subject: str
    status: Status
    trigger_event_id: str
    trigger_event_type: str
    message_id: str
    text: str
    html: str
    created_at: str
    attempts: int = 0
    next_attempt_at: str
    """When it is next due (RFC 3339); the store adds the number the sweep ranges over."""
    sent_at: str | None = None
    failed_at: str | None = None
    error: str | None = None
    trace: Trace | None = Field(None, exclude_if=lambda v: v is None)
    """The journey of the triggering event, which notification.sent / failed continue (sent later);
    stored only when there is one, so earlier documents keep their shape."""
    version: int = 0

    def is_due(self, now: datetime) -> bool:
        return self.status == "pending" and epoch(self.next_attempt_at) <= now.timestamp()


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


def message_id(notification: str, domain: str) -> str:
    """A Message-ID derived from the notification: a resent email is recognisably the same one."""
    return f"<{uuid.uuid5(MESSAGE_ID_NAMESPACE, notification)}@{domain}>"


def record_pending(
    existing: Notification | None, draft: EmailDraft, rendered: RenderedEmail, msg_id: str, now: datetime
) -> Change[Notification] | None:
    """The notification as it is before anything is sent; a redelivered event changes nothing."""
    if existing is not None:
        return None
    notification = Notification(
        id=draft.notification_id,
        order_id=draft.order_id,
        type=draft.kind,
        to=draft.to,
        to_name=draft.context.get("customer_name", ""),
        subject=one_line(rendered.subject),
        status="pending",
        trigger_event_id=draft.trigger_event_id,
        trigger_event_type=draft.trigger_event_type,
        message_id=msg_id,
        text=rendered.text,
        html=rendered.html,
        created_at=iso(now),
        next_attempt_at=iso(now),
        trace=current_trace(),
    )
    return Change(notification)


def claim(notification: Notification | None, now: datetime, policy: RetryPolicy) -> Change[Notification] | None:
    """Take the next attempt: nobody else sends it until the claim runs out (a crashed
    sender's attempt is taken over then). Counting the attempt here bounds even attempts
    that crash the process: once they have all been used without an outcome, the
    notification is recorded failed instead."""
    if notification is None or not notification.is_due(now):
        return None
    if notification.attempts >= policy.max_attempts:
        last = f"; the last error: {notification.error}" if notification.error else ""
        error = f"gave up after {notification.attempts} attempts, the last of which never finished{last}"
        return _failed(notification, error, now)
    claimed = notification.model_copy(
        update={"attempts": notification.attempts + 1, "next_attempt_at": iso(now + policy.claim)}
    )
    return Change(claimed)


def record_sent(notification: Notification | None, now: datetime) -> Change[Notification] | None:
    if notification is None or notification.status != "pending":
        return None
    sent = notification.model_copy(update={"status": "sent", "sent_at": iso(now), "error": None})
    return Change(sent, [_outcome("notification.sent", sent)])


def record_failure(
    notification: Notification | None, error: str, permanent: bool, now: datetime, policy: RetryPolicy
) -> Change[Notification] | None:
    """A failed attempt: try again later, unless the refusal is permanent or the attempts ran out."""
    if notification is None or notification.status != "pending":
        return None
    if permanent or notification.attempts >= policy.max_attempts:
        return _failed(notification, error, now)
    retry_at = now + policy.delay(notification.attempts)
    return Change(notification.model_copy(update={"next_attempt_at": iso(retry_at), "error": error}))


def _failed(notification: Notification, error: str, now: datetime) -> Change[Notification]:
    failed = notification.model_copy(update={"status": "failed", "failed_at": iso(now), "error": error})
    return Change(failed, [_outcome("notification.failed", failed)])


def record_of(notification: Notification) -> NotificationRecord:
    return NotificationRecord(
        id=notification.id,
        order_id=notification.order_id,
        type=notification.type.value,
        to=notification.to,
        subject=notification.subject,
        status=notification.status,
        sent_at=notification.sent_at,
        error=notification.error,
    )


def _outcome(event_type: str, notification: Notification) -> CloudEvent:
    outcome = NotificationOutcome(notification=record_of(notification))
    return new_event(SOURCE, event_type, notification.order_id, outcome, trace=notification.trace)
