"""The notifications service's indexes, and the one write that takes a send attempt.

Every query the service sends has an index here (README, "Store indexes"): the list of an
order's emails and the sweep for notifications due for (re)delivery (the outbox relay's probe
has the runtime's own). Download links are looked up by their token id, the document's `_id`,
which is always indexed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.notifications import domain
from services.notifications.domain import RetryPolicy
from shared.store import Document, backfill

log = logging.getLogger(__name__)

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


async def backfill_next_attempt_ts(database: AsyncDatabase[Document]) -> int:
    """Give pending notifications recorded before `next_attempt_ts` existed that field, so the
    sweep finds them. They sort first on the sweep's index (a missing value sorts before any
    number): one look at the first says whether there is anything to do."""
    updated = await backfill(
        database["notifications"], {"status": {"$eq": "pending"}}, "next_attempt_ts",
        lambda doc: {"next_attempt_ts": domain.next_attempt_ts(doc)}, BACKFILL_BATCH,
    )  # fmt: skip
    if updated:
        log.info("gave %d pending notifications their next_attempt_ts", updated)
    return updated


async def claim(
    collection: AsyncCollection[Document], notification_id: str, now: datetime, policy: RetryPolicy
) -> Document | None:
    """Take the next send attempt in one conditional write, without reading first: what
    `domain.claim` does to a notification that is pending, due and has attempts left (the
    attempt counted, the next one pushed back by the claim time, the version moved on as every
    write does). Returns the notification as stored after the claim, or None when it is not
    claimable that way: not due, sent, failed, claimed by another sender, or out of attempts
    (then `domain.claim` records it failed)."""
    return await collection.find_one_and_update(
        {
            "_id": notification_id,
            "status": {"$eq": "pending"},
            "next_attempt_ts": {"$lte": now.timestamp()},
            "attempts": {"$lt": policy.max_attempts},
        },
        {"$set": domain.next_attempt(now + policy.claim), "$inc": {"attempts": 1, "version": 1}},
        return_document=ReturnDocument.AFTER,
    )
