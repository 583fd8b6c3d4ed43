"""An aggregate's inbox remembers the events it applied for the redelivery horizon, not forever:
the document stays the size of its recent history however many events it has seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.store import AggregateStore, Change, Document
from tests.documents import AS_DOCUMENT


async def test_inbox_entries_older_than_the_retention_are_dropped_at_the_next_write(db: Any) -> None:
    store = AggregateStore(db["things"], lambda *_: None, inbox_retention=timedelta(days=7), mapping=AS_DOCUMENT)
    for n in range(3):

        def count(doc: Document | None, n: int = n) -> Change[Document]:
            return Change({**(doc or {}), "n": n})

        await store.apply("t-1", count, event_id=f"event-{n}")
    old = (datetime.now(UTC) - timedelta(days=8)).isoformat(timespec="microseconds")
    await db["things"].update_one({"_id": "t-1"}, {"$set": {"inbox.event-0": old, "inbox.event-1": old}})

    await store.apply("t-1", lambda doc: Change({**(doc or {}), "n": 3}), event_id="event-3")
    stored = await db["things"].find_one({"_id": "t-1"})
    assert sorted(stored["inbox"]) == ["event-2", "event-3"]
    # A recent event is still recognised and skipped.
    assert await store.apply("t-1", lambda doc: Change({**(doc or {}), "n": 99}), event_id="event-3") is None


def test_a_store_test_boots_the_store_alone(db: Any, request: pytest.FixtureRequest) -> None:
    """Issue 10: "Tests that only need the store boot the whole system (`db` depends on `stack`)".
    `db` stands on the embedded store alone: no broker, no services."""
    assert "stack" not in request.fixturenames
