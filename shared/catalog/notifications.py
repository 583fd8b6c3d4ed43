"""The data of the notifications service's events (notifications.events.v1): what was sent to
whom, and whether it went out.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.catalog.contract import Contract


class NotificationRecord(Contract):
    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"error"})

    id: str
    order_id: str
    type: str
    to: str
    subject: str
    status: Literal["pending", "sent", "failed"]
    sent_at: str | None = None
    error: str | None = None


class NotificationOutcome(Contract):
    notification: NotificationRecord
