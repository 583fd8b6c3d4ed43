"""The stored shapes are a public contract (issue 10: "The stored document shape and every event's
data stay exactly as they are ... earlier documents must load"): a notification and a download
link as the untyped rules wrote them load as the typed aggregates and are dumped back the same."""

from __future__ import annotations

from services.notifications import store
from services.notifications.domain import download_link, emails, notification
from shared.aggregates import Document
from tests.unit.test_notification_rules import NOW, drafts_for

# As the rules wrote them before the aggregates were typed (without `id`, which is the `_id`).
EARLIER_NOTIFICATION: Document = {
    "order_id": "5e2f0c1a-0000-4000-8000-000000000001", "type": "shipping_confirmation",
    "to": "buyer@example.com", "to_name": "Ada Buyer", "subject": "Subj", "status": "pending",
    "trigger_event_id": "evt-1", "trigger_event_type": "fulfillment.created", "message_id": "<m@x>",
    "text": "t", "html": "<p>h</p>", "created_at": "2026-03-01T12:00:00.000000+00:00", "attempts": 0,
    "next_attempt_at": "2026-03-01T12:00:00.000000+00:00", "next_attempt_ts": 1772366400.0,
    "sent_at": None, "failed_at": None, "error": None,
}  # fmt: skip
EARLIER_DOWNLOAD_LINK: Document = {
    "order_id": "o", "line_item_id": "l", "asset_url": "https://cdn.example.com/a.pdf",
    "asset": "3c8392e68dbac8074c39ec61fdeac44d", "expires_at": "2026-03-08T12:00:00.000000+00:00",
    "max_downloads": 3, "downloads": 0, "created_at": "2026-03-01T12:00:00.000000+00:00", "last_download_at": None,
}  # fmt: skip


def test_an_earlier_notification_loads_and_is_stored_back_the_same() -> None:
    loaded = store.NOTIFICATIONS.load({"id": "evt-1.shipping_confirmation", "version": 3, **EARLIER_NOTIFICATION})
    assert (loaded.id, loaded.version, loaded.type) == (
        "evt-1.shipping_confirmation",
        3,
        emails.EmailKind.SHIPPING_CONFIRMATION,
    )
    assert store.NOTIFICATIONS.dump(loaded) == EARLIER_NOTIFICATION


def test_a_notification_from_before_next_attempt_ts_gets_it_when_stored() -> None:
    earlier = {k: v for k, v in EARLIER_NOTIFICATION.items() if k != "next_attempt_ts"}
    loaded = store.NOTIFICATIONS.load({"id": "n1", **earlier})
    assert store.NOTIFICATIONS.dump(loaded) == EARLIER_NOTIFICATION


def test_a_new_notification_is_stored_in_the_earlier_shape() -> None:
    [draft] = drafts_for()
    change = notification.record_pending(None, draft, notification.RenderedEmail("Subj", "t", "<p>h</p>"), "<m@x>", NOW)
    assert change is not None
    expected = {**EARLIER_NOTIFICATION, "trigger_event_id": draft.trigger_event_id}
    assert store.NOTIFICATIONS.dump(change.document) == expected


def test_an_earlier_download_link_loads_and_is_stored_back_the_same() -> None:
    loaded = store.DOWNLOAD_LINKS.load({"id": "jti", "version": 1, **EARLIER_DOWNLOAD_LINK})
    assert store.DOWNLOAD_LINKS.dump(loaded) == EARLIER_DOWNLOAD_LINK
    grant = emails.DownloadGrant(
        "jti", "o", "l", "https://cdn.example.com/a.pdf", "2026-03-08T12:00:00.000000+00:00", 3
    )
    opened = download_link.open_grant(None, grant, NOW)
    assert opened is not None and store.DOWNLOAD_LINKS.dump(opened.document) == EARLIER_DOWNLOAD_LINK
