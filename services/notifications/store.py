"""How notifications and download links are stored: the mappings between the typed aggregates
and their documents (with the index fields the queries need), the indexes, the queries, and
the one write that takes a send attempt.

The stored shapes are a public contract (earlier documents must load): field names and value
formats are as they were before the aggregates were typed.

Every query the service sends has an index here (README, "Store indexes"): the list of an
order's emails and the sweep for notifications due for (re)delivery (the outbox relay's probe
has the runtime's own). Download links are looked up by their token id, the document's `_id`,
which is always indexed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pymongo import ASCENDING, IndexModel, ReturnDocument

from services.notifications.domain.download_link import DownloadLink
from services.notifications.domain.notification import Notification, RetryPolicy
from shared.aggregates import ModelMapping
from shared.clock import epoch, iso
from shared.store import AggregateStore, Database, Filter, Stored, backfill

log = logging.getLogger(__name__)

STORE_FIELDS = frozenset({"id", "version"})
"""Fields of the models the store writes itself (as `_id`, and moved on by every write)."""

BACKFILL_BATCH = 500

# Created at start by the runtime (runtime.indexes), beside the outbox relay's own index.
# Download grants need none: they are only ever read by `_id` (the token id).
INDEXES: dict[str, list[IndexModel]] = {
    "notifications": [
        # GET /notifications?order_id=: an order's emails, oldest first.
        IndexModel([("order_id", ASCENDING), ("created_at", ASCENDING)]),
        # The sweep: pending notifications whose next attempt is due, soonest first.
        IndexModel([("status", ASCENDING), ("next_attempt_ts", ASCENDING)]),
    ],
}


NOTIFICATIONS = ModelMapping(
    Notification, lambda sent: {"next_attempt_ts": epoch(sent.next_attempt_at)}, exclude=STORE_FIELDS
)
"""A notification as stored: the model's fields, and `next_attempt_ts`, its next attempt in Unix
seconds, for the sweep's query (see `next_attempt`)."""

DOWNLOAD_LINKS = ModelMapping(DownloadLink, exclude=STORE_FIELDS)
"""A download link as stored: the model's fields, nothing more (it is only read by `_id`)."""


def next_attempt(moment: datetime) -> Filter:
    """When a notification is next due, in both stored forms: `next_attempt_at` (RFC 3339) for
    people, `next_attempt_ts` (Unix seconds) for the sweep's query, which ranges over it from an
    index (a range over date strings runs on a slow path that reads every document on the
    embedded store)."""
    return {"next_attempt_at": iso(moment), "next_attempt_ts": moment.timestamp()}


async def due(notifications: AggregateStore[Notification], now: datetime, limit: int) -> list[str]:
    """The ids of pending notifications whose next attempt is due, soonest first."""
    cursor = notifications.collection.find(
        {"status": {"$eq": "pending"}, "next_attempt_ts": {"$lte": now.timestamp()}}, {"_id": 1}
    )
    return [doc["_id"] async for doc in cursor.sort("next_attempt_ts", 1).limit(limit)]


async def emails_of(notifications: AggregateStore[Notification], order_id: str, limit: int) -> list[Notification]:
    """An order's notifications, oldest first."""
    return await notifications.find({"order_id": {"$eq": order_id}}, sort=[("created_at", 1)], limit=limit)


async def backfill_next_attempt_ts(database: Database) -> int:
    """Give pending notifications recorded before `next_attempt_ts` existed that field, so the
    sweep finds them. They sort first on the sweep's index (a missing value sorts before any
    number): one look at the first says whether there is anything to do."""
    updated = await backfill(
        database["notifications"], {"status": {"$eq": "pending"}}, "next_attempt_ts",
        lambda doc: {"next_attempt_ts": epoch(doc["next_attempt_at"])}, BACKFILL_BATCH,
    )  # fmt: skip
    if updated:
        log.info("gave %d pending notifications their next_attempt_ts", updated)
    return updated


async def claim(
    notifications: AggregateStore[Notification], notification_id: str, now: datetime, policy: RetryPolicy
) -> Stored[Notification] | None:
    """Take the next send attempt in one conditional write, without reading first: what
    `notification.claim` does to a notification that is pending, due and has attempts left (the
    attempt counted, the next one pushed back by the claim time, the version moved on as every
    write does). Returns the notification as stored after the claim, or None when it is not
    claimable that way: not due, sent, failed, claimed by another sender, or out of attempts
    (then `notification.claim` records it failed). The outcome is written over the claimed
    document without a read (`AggregateStore.apply_to`)."""
    stored = await notifications.collection.find_one_and_update(
        {
            "_id": notification_id,
            "status": {"$eq": "pending"},
            "next_attempt_ts": {"$lte": now.timestamp()},
            "attempts": {"$lt": policy.max_attempts},
        },
        {"$set": next_attempt(now + policy.claim), "$inc": {"attempts": 1, "version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if stored is None:
        return None
    return notifications.stored(stored)
