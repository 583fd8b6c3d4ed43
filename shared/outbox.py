"""The outbox relay: what an aggregate write left in its `outbox` goes out to Kafka afterwards.

Apart from shared.store because it is the other half of the outbox and a concern of its own:
the store only writes events into the aggregate document (and wakes the relay); the relay
claims aggregates with pending events, publishes them in order per aggregate and clears them.
A crash between the two loses nothing and at worst publishes an event twice, which consumers
absorb by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pymongo import IndexModel, ReturnDocument

from shared.aggregates import Document
from shared.clock import epoch_now
from shared.events import CloudEvent
from shared.mongo import Collection, Filter

log = logging.getLogger(__name__)


Publish = Callable[[CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class Outboxed:
    """What the relay reads of an aggregate's document: its key and version, the events its
    outbox holds, in the order they were written (event id, the event as stored), and the relay
    lease it was written or claimed under (epoch seconds; None: unleased)."""

    id: Any
    version: int | None
    events: tuple[tuple[str, Mapping[str, object]], ...]
    lease_epoch: float | None = None

    @classmethod
    def of(cls, document: Document) -> Outboxed:
        entries = sorted(document.get("outbox", {}).items(), key=lambda item: item[1]["seq"])
        events = tuple((event_id, entry["event"]) for event_id, entry in entries)
        return cls(document["_id"], document.get("version"), events, document.get("relay_lease_epoch"))


class WakeRelay(Protocol):
    """Told (collection, aggregate id) after a write that left events in the outbox; with the
    document as written when that write also took the relay's lease (no claim needed then)."""

    def __call__(
        self, collection: str, aggregate_id: Any, written: Outboxed | None = None, took_lease: bool = False, /
    ) -> None: ...


UNSET_CHUNK = 100

# Every collection the relay watches gets this index: its probe for pending work is one indexed
# lookup per collection per pass, however many aggregates are stored.
OUTBOX_PENDING_INDEX = IndexModel([("outbox_pending", 1)])  # (nx-27017 cannot index _id in a compound)


class OutboxRelay:
    """Publishes what aggregates left in their outbox, in order per aggregate, then clears it.

    Several replicas relay at once: each claims an aggregate with a short lease before
    publishing its outbox, so they seldom publish the same event; when they do (a lease ran
    out mid-publish), consumers absorb the duplicate by event id. Never zero times.
    """

    LEASE_SECONDS = 10.0
    BATCH = 500  # aggregates per collection per pass; a pass that fills it is followed by another at once

    def __init__(
        self,
        collections: Iterable[Collection],
        publish: Publish,
        poll_seconds: float,
        retry_seconds: float = 5.0,
    ) -> None:
        self.collections = list(collections)
        self.publish = publish
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failed = 0
        self._skip: dict[str, int] = {}
        self._dirty: dict[str, set[Any] | None] = {}  # written since the last pass; None: probe it
        self._leased: dict[str, dict[Any, Outboxed]] = {}  # written with the lease taken: no claim
        self._everything = True

    def watch(self, collection: Collection) -> None:
        if all(watched.name != collection.name for watched in self.collections):
            self.collections.append(collection)

    def wake(
        self,
        collection: str | None = None,
        aggregate_id: Any = None,
        written: Outboxed | None = None,
        took_lease: bool = False,
    ) -> None:
        """Events were written to `aggregate_id` in `collection` (somewhere, without them): relay
        them now. A pass for known aggregates claims them without probing for pending work. One
        whose write took the relay's lease (`took_lease`, shared.store) needs no claim at all: the
        next pass publishes from the document `written`, and a later write under that same lease
        replaces it. Should this process die first, the lease runs out and a poll relays it."""
        if collection is not None and aggregate_id is not None and written is not None:
            held = self._leased.setdefault(collection, {})
            ours = aggregate_id in held and held[aggregate_id].lease_epoch == written.lease_epoch
            if took_lease or ours:
                held[aggregate_id] = written
                self._wake.set()
                return
        if collection is None:
            self._everything = True
        elif aggregate_id is None:
            self._dirty[collection] = None
        else:
            known = self._dirty.setdefault(collection, set())
            if known is not None:
                known.add(aggregate_id)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # One last pass so that what was just written is not left waiting for a restart.
        try:
            await asyncio.wait_for(self.relay_once(), timeout=5)
        except Exception:
            log.warning("outbox not fully relayed at shutdown; it will be at next start")

    async def _run(self) -> None:
        """A pass woken by writes probes the collections written; a pass on the poll (what a
        crashed replica or a failed publish left behind) probes them all."""
        while True:
            self._wake.clear()
            only = None if self._everything else dict(self._dirty)
            self._everything, self._dirty = False, {}
            try:
                await self.relay_once(only)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                self._everything = True

    async def relay_once(self, only: dict[str, set[Any] | None] | None = None) -> int:
        """One pass over aggregates with pending events, a batch per collection. An aggregate whose
        events cannot go out now waits (its lease becomes its retry time); the others go on: no
        head-of-line blocking. A batch of aggregates all waiting out a retry never hides the ones
        after it: the next pass looks past it."""
        sent = 0
        for collection in self.collections:
            tried = set()  # one attempt per aggregate and pass
            for aggregate_id, leased in self._leased.pop(collection.name, {}).items():
                sent += await self._relay_leased(collection, leased) or 0
                tried.add(aggregate_id)
            if only is not None and collection.name not in only:
                continue
            known = only.get(collection.name) if only is not None else None
            if known is not None:
                pending = sorted(known, key=str)  # written just now: no need to look for them
                skip = 0
            else:
                skip = self._skip.get(collection.name, 0)
                # No sort: with one, the embedded store walks the whole collection in _id order.
                probe = collection.find({"outbox_pending": {"$eq": True}}, {"_id": 1})
                pending = [doc["_id"] async for doc in probe.skip(skip).limit(self.BATCH)]
            relayed = 0
            for aggregate_id in pending:
                if aggregate_id in tried:
                    continue
                doc = await self._claim(collection, aggregate_id)
                if doc is None:
                    continue
                published = await self._relay_leased(collection, doc)
                if published is not None:
                    sent += published
                    relayed += 1
            if known is not None or len(pending) < self.BATCH:
                self._skip.pop(collection.name, None)
                continue
            # A full batch none of which could go out (each waits out a retry, or another replica
            # has it) must not hide the aggregates after it: the next pass looks past it, at once.
            self._skip[collection.name] = skip + self.BATCH if not relayed else 0
            self.wake(collection.name)
        return sent

    async def _relay_leased(self, collection: Collection, doc: Outboxed) -> int | None:
        """Publish the events of an aggregate this relay holds the lease of (how many; None when
        they could not go out: the aggregate waits out `retry_seconds`, its lease, while the
        others go on)."""
        try:
            return await self._relay_document(collection, doc)
        except Exception:
            self.failed += 1
            log.exception(
                "relaying %s/%s failed; retrying it in %ss, the others go on",
                collection.name, doc.id, self.retry_seconds,
            )  # fmt: skip
            return None

    async def _claim(self, collection: Collection, aggregate_id: Any) -> Outboxed | None:
        """Lease the aggregate for LEASE_SECONDS: the unleased one, else one whose lease ran out.
        Two plain conditions rather than one `$or`, and the lease as a number: the embedded
        store answers an `$or` or a time-string range in a find-and-modify by reading every
        document of the collection."""
        lease: Filter = {"$set": {"relay_lease_epoch": epoch_now() + self.LEASE_SECONDS}}
        for unleased_or_expired in ({"$exists": False}, {"$lt": epoch_now()}):
            claimed = await collection.find_one_and_update(
                {"_id": aggregate_id, "outbox_pending": {"$eq": True}, "relay_lease_epoch": unleased_or_expired},
                lease,
                projection={"outbox": 1, "version": 1},
                return_document=ReturnDocument.AFTER,
            )
            if claimed is not None:
                return Outboxed.of(claimed)
        return None

    async def _relay_document(self, collection: Collection, doc: Outboxed) -> int:
        published: list[str] = []
        failed = True
        try:
            for event_id, event in doc.events:
                await self.publish(CloudEvent.model_validate(event))
                published.append(event_id)
            failed = False
        finally:
            self.published += len(published)
            await self._release(collection, doc, published, failed)
        return len(published)

    async def _release(self, collection: Collection, doc: Outboxed, published: list[str], failed: bool) -> None:
        """One write clears what went out and hands the aggregate back (after a failure, not before
        `retry_seconds`). When nothing was written since the claim, the same write marks the
        aggregate as having nothing pending; otherwise a writer added events meanwhile and it stays
        pending for the next pass. Bumping the version makes a writer holding an older copy re-read,
        so it neither puts published events back nor restores the lease (which would hold the next
        events back until it ran out)."""
        # nx-27017 silently ignores a $unset of 127 or more fields: clear in chunks of UNSET_CHUNK.
        paths = [f"outbox.{e}" for e in published]
        chunks = [paths[i : i + UNSET_CHUNK] for i in range(0, len(paths), UNSET_CHUNK)] or [[]]
        retry = failed and self.retry_seconds > 0
        version = doc.version or 0
        conditional = not failed and doc.version is not None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            unset = dict.fromkeys(chunk, "")
            if last and not retry:
                unset["relay_lease_epoch"] = ""
            update: Filter = {"$inc": {"version": 1}}
            if unset:
                update["$unset"] = unset
            if last and retry:
                update["$set"] = {"relay_lease_epoch": epoch_now() + self.retry_seconds}
            if conditional:
                marked = {**update, "$set": {"outbox_pending": False}} if last else update
                done = await collection.update_one({"_id": doc.id, "version": {"$eq": version}}, marked)
                if done.modified_count == 1:
                    version += 1
                    continue
                conditional = False  # a writer came in between: it keeps the aggregate pending,
                self.wake(collection.name, doc.id)  # and its events go out at the next pass
            await collection.update_one({"_id": doc.id}, update)
