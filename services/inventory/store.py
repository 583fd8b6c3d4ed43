"""Stock persistence: one document per (location, sku), changed by one conditional write.

Every stock change is read, decided by a pure rule from `domain.stock`, then written with a single
conditional update that matches only if no other stock change landed since the read (the
document's `seq`, which counts stock changes). That one write also puts the
inventory.level_changed event, with the exact new levels, into the document's outbox (and, when
the caller asks, the answer to the request that caused it). So:

- available never goes below zero whatever the concurrency: a rule sees a consistent level and
  its decision is written only if that level is still the current one (otherwise re-read, re-decide);
- every change emits its one level event, in order, and a crash cannot separate the two;
- the outbox relay's bookkeeping (it bumps `version`) does not make stock writers retry.

A stock document holds what is live: on hand, reserved, the holds of open fulfillment orders, and
the marks of effects whose fulfillment order's record does not show them yet (see
`domain.stock.Mark`). Marks are forgotten by the next change after their record has them (`settled`),
or after `mark_retention` (the broker's redelivery horizon) if that never comes: the document
stays the same size however many units were ever sold.

The process remembers the last state it read or wrote of each stock, and decides on it without
reading again: the conditional write proves it current (or sends the change back to read). A
decision to change nothing proves nothing, so it is taken again on a fresh read. Within one
process, changes of the same stock queue behind each other instead of racing (a hot sku would
otherwise make every loser re-read and retry); across processes the conditional write alone
keeps them apart.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast

from pymongo import IndexModel
from pymongo.errors import DuplicateKeyError

from services.inventory.domain.requests import CancellationNote
from services.inventory.domain.reservations import ReservationRecord
from services.inventory.domain.stock import Effect, StockLevel, level_changed
from services.inventory.mapping import RECORDS, StoredStock, dump_stock, is_note, load_stock
from shared.catalog import Shortage
from shared.clock import now_iso
from shared.events import CloudEvent
from shared.idempotency import request_effect_id
from shared.store import AggregateStore, Change, Collection, ConcurrencyConflict, Filter, Stored, WakeRelay

R = TypeVar("R", bound=Effect | Shortage)

# Every query inventory sends, and the index that serves it (created at start by the runtime).
# Documents are otherwise read by `_id`: a stock by (location, sku), a record by fulfillment order,
# the location directory, an order's cancellation note.
INDEXES: dict[str, list[IndexModel]] = {
    # GET /stock/{sku}: {"sku": {"$eq": sku}}
    "stock": [IndexModel([("sku", 1)])],
    # GET /reservations?order_id= and an order's cancellation: {"order_id": {"$eq": id}} by created_at
    "reservations": [IndexModel([("order_id", 1), ("created_at", 1)])],
}

# Locations have unique priorities 1..10,000: a sku has at most this many stock documents.
MAX_LOCATIONS = 10_000


def stock_id(location_id: str, sku: str) -> str:
    """Location ids never contain '/', so the first '/' separates the two."""
    return f"{location_id}/{sku}"


# How many keyed requests a stock document remembers: far more than a client retries one
# adjustment, and a fixed size whatever the history.
RECENT_REQUESTS = 32


@dataclass(frozen=True)
class Changed(Generic[R]):
    """A stock change as decided: the stock after it (or as it was, when the rule moved nothing
    or found a shortage), what the rule returned, and the ids of the events written with it
    besides its level event (what `announce` gave)."""

    level: StockLevel
    outcome: R
    sent: tuple[str, ...] = ()


Announce = Callable[[StockLevel], Sequence[CloudEvent]]


class StockStore:
    MAX_ATTEMPTS = 200
    REMEMBERED = 10_000  # stocks whose last state (and settled marks) this process keeps in memory

    def __init__(
        self,
        collection: Collection,
        wake_relay: WakeRelay,
        mark_retention: timedelta = timedelta(days=7),
    ) -> None:
        self.collection = collection
        self._wake_relay = wake_relay
        self.mark_retention = mark_retention
        self._queues: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._known: OrderedDict[str, StoredStock] = OrderedDict()
        self._settled: OrderedDict[str, set[str]] = OrderedDict()

    async def level(self, location_id: str, sku: str) -> StockLevel:
        key = stock_id(location_id, sku)
        stored = await self._read(key)
        return self._live(stored) if stored else StockLevel(location_id, sku)

    async def levels_of_sku(self, sku: str) -> list[StockLevel]:
        cursor = self.collection.find({"sku": {"$eq": sku}}, {"outbox": 0}).limit(MAX_LOCATIONS)
        return [self._live(load_stock(doc)) async for doc in cursor]

    def settled(self, location_id: str, sku: str, mark_keys: Iterable[str]) -> None:
        """The record of these marks' fulfillment order has them now: the next change of this
        stock forgets them (no write of its own; a mark left by a crash goes with its retention)."""
        keys = set(mark_keys)
        if not keys:
            return
        key = stock_id(location_id, sku)
        self._settled.setdefault(key, set()).update(keys)
        self._settled.move_to_end(key)
        while len(self._settled) > self.REMEMBERED:
            self._settled.popitem(last=False)

    async def change(
        self,
        location_id: str,
        sku: str,
        rule: Callable[[StockLevel], R],
        cause: Mapping[str, Any],
        announce: Announce | None = None,
    ) -> Changed[R]:
        """Apply `rule` to the stock and write its effect in one conditional write, with the
        level event and whatever `announce` gives for the stock as changed. A rule that raises,
        finds a shortage or moves nothing writes nothing (and announces nothing)."""
        key = stock_id(location_id, sku)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Lock()
        async with queue:
            return await self._change(key, location_id, sku, rule, cause, announce)

    async def _change(
        self,
        key: str,
        location_id: str,
        sku: str,
        rule: Callable[[StockLevel], R],
        cause: Mapping[str, Any],
        announce: Announce | None,
    ) -> Changed[R]:
        request = request_effect_id(f"stock/{key}")
        if request is not None:
            cause = {**cause, "request": request}
        for attempt in range(self.MAX_ATTEMPTS):
            # A keyed request (a retry, perhaps) is checked against the stored document itself.
            remembered = self._known.get(key) if attempt == 0 and request is None else None
            stored = remembered or await self._read(key)
            current = self._live(stored) if stored else StockLevel(location_id, sku)
            if request is not None and stored is not None and request in stored.recent_requests:
                # This keyed request already changed it: a retry after a crash moves nothing.
                return Changed(current, cast(R, Effect(current)))
            outcome = rule(current)
            if not isinstance(outcome, Effect) or outcome.level == current:
                if remembered is not None:
                    continue  # decided on what this process saw last: look again before saying no
                return Changed(current, outcome)
            events = list(announce(outcome.level)) if announce else []
            written = await self._write(key, stored, outcome.level, cause, events)
            if written is not None:
                self._wake_relay(self.collection.name, key)
                return Changed(written, outcome, tuple(event.id for event in events))
            # Someone else changed this stock since it was read: re-read and re-decide (after a
            # little back-off, unless what was stale was only this process's memory).
            self._known.pop(key, None)
            if remembered is None:
                await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise ConcurrencyConflict(f"stock {key} kept changing")

    async def _read(self, key: str) -> StoredStock | None:
        doc = await self.collection.find_one({"_id": key}, {"outbox": 0})
        if doc is None:
            return None
        stored = load_stock(doc)
        self._remember(key, stored)
        return stored

    def _remember(self, key: str, stored: StoredStock) -> None:
        self._known[key] = stored
        self._known.move_to_end(key)
        while len(self._known) > self.REMEMBERED:
            self._known.popitem(last=False)

    async def _write(
        self,
        key: str,
        stored: StoredStock | None,
        after: StockLevel,
        cause: Mapping[str, Any],
        announced: Sequence[CloudEvent],
    ) -> StockLevel | None:
        """The stock as decided (with its new seq), or None when another change came first."""
        seq = stored.level.seq if stored else 0
        after = replace(after, seq=seq + 1)
        events = [level_changed(after), *announced]
        entries = {event.id: {"seq": (seq + 1) * 1000 + i, "event": event.model_dump(mode="json")}
                   for i, event in enumerate(events)}  # fmt: skip
        last_change = {**cause, "at": now_iso()}
        # The keys of the last requests that changed this stock, written with the change itself.
        recent = stored.recent_requests if stored else ()
        if "request" in cause:
            recent = (*recent, cause["request"])[-RECENT_REQUESTS:]
        settled = set(self._settled.get(key, ()))
        marked_at = stored.marked_at if stored else {}
        kept = {k: mark for k, mark in after.marks.items() if k not in settled}
        now = time.time()
        new = StoredStock(replace(after, marks=kept), {k: marked_at.get(k, now) for k in kept}, recent)
        fields = dump_stock(new)
        if stored is None:
            document = {"_id": key, **fields, "last_change": last_change}
            try:
                await self.collection.insert_one({**document, "version": 1, "outbox": entries, "outbox_pending": True})
            except DuplicateKeyError:
                return None
        else:
            to_set: Filter = {
                "on_hand": after.on_hand, "reserved": after.reserved, "seq": seq + 1, "last_change": last_change,
                "recent_requests": fields["recent_requests"], "bin": after.bin, "outbox_pending": True,
                **{f"outbox.{event_id}": entry for event_id, entry in entries.items()},
            }  # fmt: skip
            to_unset: dict[str, str] = {}
            old = dump_stock(stored)
            changed: tuple[tuple[str, Mapping[str, object], Mapping[str, object]], ...] = (
                ("holds", old["holds"], fields["holds"]),
                ("marks", old["marks"], fields["marks"]),
            )
            for name, before, now_stored in changed:
                for field in before.keys() | now_stored.keys():
                    if field not in now_stored:
                        to_unset[f"{name}.{field}"] = ""
                    elif before.get(field) != now_stored[field]:
                        to_set[f"{name}.{field}"] = now_stored[field]
            if stored.has_commits:
                to_unset["commits"] = ""  # the history stocks kept before it moved to the records
            update: Filter = {"$set": to_set, "$inc": {"version": 1}}
            if to_unset:
                update["$unset"] = to_unset
            result = await self.collection.update_one({"_id": key, "seq": seq}, update)
            if result.matched_count != 1:
                return None
        self._remember(key, new)
        if settled and key in self._settled:
            self._settled[key] -= settled
            if not self._settled[key]:
                del self._settled[key]
        return after

    def _live(self, stored: StoredStock) -> StockLevel:
        """The stock as rules see it: without the marks past their retention."""
        horizon = time.time() - self.mark_retention.total_seconds()
        if all(at >= horizon for at in stored.marked_at.values()):
            return stored.level
        marks = {k: mark for k, mark in stored.level.marks.items() if stored.marked_at.get(k, 0.0) >= horizon}
        return replace(stored.level, marks=marks)


# --- reservation records ----------------------------------------------------------------------

# A page of an order's reservation records (an order has at most 250 lines).
RECORDS_PAGE = 500


def cancellation_note_id(order_id: str) -> str:
    """An order's cancellation note lives beside its fulfillment orders' records, so that a
    shipment reads both in one round trip (fulfillment order ids are uuids: never a '/')"""
    return f"cancelled-order/{order_id}"


@dataclass(frozen=True)
class Record:
    """A fulfillment order's reservation record as read, with what a request needs beside it."""

    stored: Stored[ReservationRecord] | None  # None if there is none yet
    note: CancellationNote | None = None  # the order's cancellation note, when asked for and there is one

    @property
    def record(self) -> ReservationRecord | None:
        return self.stored.aggregate if self.stored else None

    @property
    def unsent(self) -> bool:
        """Whether events it announced are still waiting in its outbox."""
        return self.stored is not None and self.stored.unsent

    def applied(self, event_id: str) -> bool:
        return self.stored is not None and self.stored.applied(event_id)


class ReservationStore:
    """The reservation records of fulfillment orders and, beside them, orders' cancellation notes."""

    def __init__(self, records: AggregateStore[ReservationRecord], notes: AggregateStore[CancellationNote]) -> None:
        self.records = records
        self.notes = notes

    async def get(self, fo_id: str) -> ReservationRecord | None:
        return await self.records.get(fo_id)

    async def read(self, fo_id: str, note_of: str | None = None) -> Record:
        """One round trip: the record, and the order's cancellation note when asked for."""
        collection = self.records.collection
        if note_of is None:
            stored = await collection.find_one({"_id": fo_id})
            return Record(self.records.stored(stored) if stored else None)
        note_id = cancellation_note_id(note_of)
        found = {doc["_id"]: doc async for doc in collection.find({"_id": {"$in": [fo_id, note_id]}})}
        stored, note = found.get(fo_id), found.get(note_id)
        return Record(
            self.records.stored(stored) if stored else None, self.notes.stored(note).aggregate if note else None
        )

    async def save(self, fo_id: str, record: Record, change: Change[ReservationRecord], event_id: str) -> bool:
        """Write the record over the one read, only if nobody wrote it since (False: somebody did)."""
        return await self.records.save(fo_id, record.stored, change, event_id=event_id) is not None

    async def of_order(self, order_id: str, everything: bool = False) -> list[ReservationRecord]:
        """An order's reservation records, oldest first: the first page, or all of them."""
        found: list[ReservationRecord] = []
        seen = 0
        while True:
            cursor = self.records.collection.find(
                {"order_id": {"$eq": order_id}}, {"inbox": 0, "outbox": 0}, sort=[("created_at", 1)], skip=seen,
                limit=RECORDS_PAGE,
            )  # fmt: skip
            page = [doc async for doc in cursor]
            seen += len(page)
            found.extend(RECORDS.load(doc) for doc in page if not is_note(doc))
            if not everything or len(page) < RECORDS_PAGE:
                return found
