"""MongoDB persistence shared by every service: one document per aggregate, written whole.

Delivery semantics live here, decided once:

- Optimistic concurrency: every aggregate document carries a `version`; a write replaces the
  document only if the version is still the one that was read, otherwise it re-reads and
  re-applies the rule. No multi-document transactions (the local store does not isolate them).
- Inbox: the ids of the events already applied to an aggregate are kept in the aggregate
  (`inbox`), so a redelivered or duplicated event changes nothing twice.
- Outbox: the events a change emits are written in the same document write (`outbox`), and
  the relay (shared.outbox) publishes them afterwards; a crash between the two loses nothing
  and at worst publishes an event twice, which consumers absorb by event id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Generic, Literal, overload

from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import DuplicateKeyError

# The aggregate vocabulary lives in shared.aggregates (no pymongo there); re-exported for callers that store.
from shared.aggregates import A, Missing
from shared.aggregates import Change as Change
from shared.aggregates import Document as Document
from shared.aggregates import Rule as Rule
from shared.aggregates import Stored as Stored
from shared.aggregates import StoreMapping as StoreMapping
from shared.clock import epoch_now, iso, now
from shared.clock import now_iso as now_iso
from shared.idempotency import request_effect_id
from shared.mongo import Collection as Collection
from shared.mongo import Database as Database
from shared.mongo import Filter as Filter

# The relay lives in shared.outbox; re-exported for callers that import it from here.
from shared.outbox import OUTBOX_PENDING_INDEX as OUTBOX_PENDING_INDEX
from shared.outbox import UNSET_CHUNK as UNSET_CHUNK
from shared.outbox import Outboxed as Outboxed
from shared.outbox import OutboxRelay as OutboxRelay
from shared.outbox import Publish as Publish
from shared.outbox import WakeRelay as WakeRelay
from shared.query_log import QueryShapes
from shared.settings import ServiceSettings


class StoreOperations(monitoring.CommandListener):
    """Counts every command sent to the store, by collection and command: what an order costs in
    store round trips is a figure ops and the benchmarks read from /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "store_commands", "Commands sent to MongoDB, by collection and command.", ["collection", "command"],
            registry=registry,
        )  # fmt: skip

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else ""
        self.commands.labels(collection, event.command_name).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def build_mongo_client(
    settings: ServiceSettings, registry: CollectorRegistry | None = None
) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=5_000,
        connectTimeoutMS=5_000,
        tz_aware=True,
        appname=settings.service_name,
        event_listeners=[
            *([StoreOperations(registry)] if registry is not None else []),
            *([QueryShapes(settings.store_query_log, settings.service_name)] if settings.store_query_log else []),
        ],
    )


class ConcurrencyConflict(RuntimeError):
    """The aggregate kept changing under us; the caller's retry policy decides what next."""


class AggregateMissing(LookupError):
    """`apply(..., missing="raise")` found no such aggregate."""


class AggregateStore(Generic[A]):
    """One collection of aggregates, each written whole with its inbox and outbox.

    `mapping` says how an aggregate of type `A` is stored (shared.aggregates.StoreMapping)."""

    MAX_CONFLICT_RETRIES = 50

    def __init__(
        self,
        collection: Collection,
        wake_relay: WakeRelay,
        inbox_retention: timedelta = timedelta(days=7),
        *,
        mapping: StoreMapping[A],
    ) -> None:
        self.collection = collection
        self._wake_relay = wake_relay
        self.inbox_retention = inbox_retention
        self.mapping = mapping

    async def get(self, aggregate_id: str) -> A | None:
        doc = await self.collection.find_one({"_id": aggregate_id})
        return self.stored(doc).aggregate if doc else None

    async def find(
        self,
        query: Mapping[str, object],
        sort: list[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> list[A]:
        cursor = self.collection.find(query, {"inbox": 0, "outbox": 0})
        if sort:
            cursor = cursor.sort(sort)
        if skip:
            cursor = cursor.skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        return [self.stored(doc).aggregate async for doc in cursor]

    @overload
    async def apply(
        self, aggregate_id: str, rule: Rule[A], *, event_id: str | None = None, missing: Literal["create"] = "create"
    ) -> A | None: ...

    @overload
    async def apply(
        self,
        aggregate_id: str,
        rule: Callable[[A], Change[A] | None],
        *,
        event_id: str | None = None,
        missing: Literal["skip", "raise"] | BaseException,
    ) -> A | None: ...

    async def apply(
        self,
        aggregate_id: str,
        rule: Callable[[Any], Change[A] | None],
        *,
        event_id: str | None = None,
        missing: Missing | BaseException = "create",
    ) -> A | None:
        """Apply `rule` to the aggregate and save the result.

        The rule is pure: it gets the current aggregate and returns a Change, or None when
        there is nothing to do. With `event_id`, an event already applied is skipped.
        Returns the saved aggregate, or None when nothing changed.
        When there is no such aggregate: `missing="create"` gives the rule None (it may create
        it), `"skip"` changes nothing (None), `"raise"` raises AggregateMissing, and an exception
        given as `missing` is raised as it is.
        Inside an HTTP request with an Idempotency-Key the key is the event id (see
        shared.idempotency), so the request's effect and its key are one write.
        """
        if event_id is None:
            event_id = request_effect_id(f"{self.collection.name}/{aggregate_id}")
        for _ in range(self.MAX_CONFLICT_RETRIES):
            found = await self.collection.find_one({"_id": aggregate_id})
            if found is not None and event_id is not None and event_id in found.get("inbox", {}):
                return None
            current = self.stored(found) if found is not None else None
            if current is not None:
                change = rule(current.aggregate)
            elif missing == "create":
                change = rule(None)
            elif missing == "skip":
                return None
            elif missing == "raise":
                raise AggregateMissing(f"{self.collection.name}/{aggregate_id} does not exist")
            else:
                raise missing
            if change is None:
                return None
            saved = await self._save(aggregate_id, current, change, event_id)
            if saved is not None:
                return saved.aggregate
        raise ConcurrencyConflict(f"{self.collection.name}/{aggregate_id} kept changing")

    async def save(
        self, aggregate_id: str, current: Stored[A] | None, change: Change[A], *, event_id: str | None = None
    ) -> A | None:
        """Write `change` over `current` (the aggregate as read, None if there was none) only if
        nobody wrote the aggregate since; None when somebody did. For a caller whose decision
        rests on more than this aggregate: on None it re-reads and decides all over."""
        saved = await self._save(aggregate_id, current, change, event_id)
        return None if saved is None else saved.aggregate

    async def create(self, aggregate_id: str, change: Change[A], *, event_id: str | None = None) -> A | None:
        """Store a new aggregate in one round trip (an insert, no read first), for a caller that
        expects it not to exist yet. Returns the saved aggregate, or None when it exists already
        (a redelivery or retry: nothing changes; the caller goes on with what is stored)."""
        stored = await self.insert(aggregate_id, change, event_id=event_id)
        return None if stored is None else stored.aggregate

    async def insert(self, aggregate_id: str, change: Change[A], *, event_id: str | None = None) -> Stored[A] | None:
        """`create`, answering with the aggregate as stored, for a caller that goes on to change it
        with `apply_to` (no read in between)."""
        if event_id is None:
            event_id = request_effect_id(f"{self.collection.name}/{aggregate_id}")
        return await self._save(aggregate_id, None, change, event_id)

    def stored(self, document: Document) -> Stored[A]:
        """The aggregate of a document as the collection holds it (as a find or a conditional
        `find_one_and_update` returned it), with that document for `apply_to`."""
        public = {name: value for name, value in document.items() if name not in _BOOKKEEPING}
        return Stored(self.mapping.load({"id": document["_id"], **public}), document)

    async def find_stored(self, query: Mapping[str, object], limit: int = 0) -> list[Stored[A]]:
        """`find`, each aggregate with its document, for changing them with `apply_to`."""
        return [self.stored(doc) async for doc in self.collection.find(query, limit=limit)]

    async def apply_to(self, stored: Stored[A], rule: Rule[A]) -> A | None:
        """`apply` starting from an aggregate as the caller read it (`stored`), so the common
        case is one write and no read; if the aggregate changed since, it is re-read and the
        rule applied again."""
        change = rule(stored.aggregate)
        if change is None:
            return None
        aggregate_id = stored.document["_id"]
        saved = await self._save(
            aggregate_id, stored, change, request_effect_id(f"{self.collection.name}/{aggregate_id}")
        )
        if saved is None:
            return await self.apply(aggregate_id, rule)
        return saved.aggregate

    async def set_fields(
        self,
        aggregate_id: str,
        fields: Mapping[str, object],
        *,
        event_id: str,
        where: Mapping[str, object] | None = None,
    ) -> bool | None:
        """Set `fields` (dotted paths allowed) on an existing aggregate in one conditional write,
        without reading it: for an effect that depends on nothing in the aggregate and emits
        nothing. Idempotent by `event_id` like `apply`, and it moves the version on, so a writer
        holding an older copy re-reads. `where`: conditions on the aggregate's own fields under
        which the effect applies (a rule that needs no more of the aggregate than that). True
        when written, False when the event was applied already (or `where` does not hold), None
        when there is no such aggregate. The event id becomes a field name, so it must be letters,
        digits, '-', '_' or ':' (ValueError otherwise: use `apply`)."""
        if not _FIELD_NAME.fullmatch(event_id):
            raise ValueError(f"event id {event_id[:64]!r} cannot be an inbox field name")
        inbox_entry = f"inbox.{event_id}"
        result = await self.collection.update_one(
            {"_id": aggregate_id, **(where or {}), inbox_entry: {"$exists": False}},
            {"$set": {**fields, inbox_entry: now_iso()}, "$inc": {"version": 1}},
        )
        if result.modified_count == 1:
            return True
        exists = await self.collection.find_one({"_id": aggregate_id}, {"_id": 1})
        return False if exists is not None else None

    async def _save(
        self, aggregate_id: str, current: Stored[A] | None, change: Change[A], event_id: str | None
    ) -> Stored[A] | None:
        """Write the aggregate and its inbox and outbox in one write; tells the relay (after a write
        that left events) itself. None when someone else wrote it first."""
        written = await self._write(aggregate_id, current.document if current else None, change, event_id)
        if written is None:
            return None
        doc, lease_taken = written
        if change.events:
            self._wake_relay(self.collection.name, aggregate_id, Outboxed.of(doc), lease_taken)
        return self.stored(doc)

    async def _write(
        self, aggregate_id: str, current: Document | None, change: Change[A], event_id: str | None
    ) -> tuple[Document, bool] | None:
        version = current["version"] if current else 0
        doc = dict(self.mapping.dump(change.document))
        doc["_id"] = aggregate_id
        doc["version"] = version + 1
        doc["inbox"] = _recent(current.get("inbox", {}) if current else {}, self.inbox_retention)
        if event_id is not None:
            doc["inbox"][event_id] = now_iso()
        outbox = dict(current.get("outbox", {})) if current else {}
        for index, event in enumerate(change.events):
            outbox[event.id] = {"seq": doc["version"] * 1000 + index, "event": event.model_dump(mode="json")}
        doc["outbox"] = outbox
        doc["outbox_pending"] = bool(outbox)
        if current and "relay_lease_epoch" in current:
            doc["relay_lease_epoch"] = current["relay_lease_epoch"]
        # The write that leaves events takes the relay's lease when nobody holds it, so that this
        # process's relay publishes from the document in hand instead of claiming it first.
        lease_taken = bool(change.events) and doc.get("relay_lease_epoch", 0) < epoch_now()
        if lease_taken:
            doc["relay_lease_epoch"] = epoch_now() + OutboxRelay.LEASE_SECONDS
        doc.pop("id", None)
        if current is None:
            try:
                await self.collection.insert_one(doc)
            except DuplicateKeyError:
                return None  # someone created it first: re-read and re-apply
            return doc, lease_taken
        result = await self.collection.replace_one({"_id": aggregate_id, "version": version}, doc)
        return (doc, lease_taken) if result.modified_count == 1 else None


# What an event id must look like to be used as a field name in an update (no path syntax).
_FIELD_NAME = re.compile(r"[A-Za-z0-9_:-]{1,200}")


def _recent(inbox: dict[str, str], retention: timedelta) -> dict[str, str]:
    """The inbox without entries older than `retention`: an event is not redelivered after its
    topic's retention (and a redrive of older dead letters is a deliberate new delivery), so the
    inbox stays the size of the aggregate's recent history instead of all of it."""
    horizon = iso(now() - retention)
    return {event_id: at for event_id, at in inbox.items() if at >= horizon}


_BOOKKEEPING = ("_id", "inbox", "outbox", "outbox_pending", "relay_lease_epoch", "relay_lease_until")


async def missing_first(collection: Collection, query: Mapping[str, object], field: str, limit: int) -> list[Document]:
    """Up to `limit` documents matching `query` that lack `field` (or hold null), for giving
    documents stored before a field existed their value. They sort first on an index that ends
    with `field` (before any value, on MongoDB and on the embedded store), so this reads one
    document when none lacks it, and never scans."""
    first = await collection.find(query, {"inbox": 0, "outbox": 0}).sort(field, 1).limit(1).to_list()
    if not first or first[0].get(field) is not None:
        return []
    batch = await collection.find(query, {"inbox": 0, "outbox": 0}).sort(field, 1).limit(limit).to_list()
    return [doc for doc in batch if doc.get(field) is None]


async def backfill(
    collection: Collection,
    query: Mapping[str, object],
    field: str,
    values_of: Callable[[Document], Mapping[str, object]],
    batch: int = 500,
) -> int:
    """Give every document matching `query` that lacks `field` the fields `values_of(doc)` says,
    batch by batch through `missing_first`; how many were updated. The version moves on, so a
    writer holding a copy without them re-reads."""
    updated = 0
    while True:
        missing = await missing_first(collection, query, field, batch)
        for doc in missing:
            await collection.update_one({"_id": doc["_id"]}, {"$set": values_of(doc), "$inc": {"version": 1}})
        updated += len(missing)
        if len(missing) < batch:
            return updated


async def ping(database: Database) -> None:
    await database.command("ping")
