"""Stock persistence: one document per (location, sku), changed by one conditional write.

Every stock change is read, decided by a pure rule from `domain`, then written with a single
conditional update that matches only if no other stock change landed since the read (the
document's `seq`, which counts stock changes). That one write also puts the
inventory.level_changed event, with the exact new levels, into the document's outbox. So:

- available never goes below zero whatever the concurrency: a rule sees a consistent level and
  its decision is written only if that level is still the current one (otherwise re-read, re-decide);
- every change emits its level event, in order, and a crash cannot separate the two;
- the outbox relay's bookkeeping (it bumps `version`) does not make stock writers retry.

Within one process, changes of the same stock queue behind each other instead of racing (a hot
sku would otherwise make every loser re-read and retry); across processes the conditional write
alone keeps them apart.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, cast

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.inventory import domain
from services.inventory.domain import Commit, CommitState, Effect, StockLevel
from shared.catalog import Shortage
from shared.idempotency import request_effect_id
from shared.store import ConcurrencyConflict, Document, now_iso

R = TypeVar("R", bound=Effect | Shortage)


def stock_id(location_id: str, sku: str) -> str:
    """Location ids never contain '/', so the first '/' separates the two."""
    return f"{location_id}/{sku}"


def map_key(identifier: str) -> str:
    """An id made safe as a document field name ('.' and '$' have meaning in update paths)."""
    return identifier.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def from_map_key(key: str) -> str:
    return key.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


# How many keyed requests a stock document remembers: far more than a client retries one
# adjustment, and a fixed size whatever the history.
RECENT_REQUESTS = 32


class StockStore:
    MAX_ATTEMPTS = 200

    def __init__(self, collection: AsyncCollection[Document], wake_relay: Callable[[], None]) -> None:
        self.collection = collection
        self._wake_relay = wake_relay
        self._indexed = False
        self._queues: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def level(self, location_id: str, sku: str) -> StockLevel:
        doc = await self.collection.find_one({"_id": stock_id(location_id, sku)}, {"outbox": 0})
        return to_level(doc) if doc else StockLevel(location_id, sku)

    async def levels_of_sku(self, sku: str) -> list[StockLevel]:
        await self._ensure_indexes()
        return [to_level(doc) async for doc in self.collection.find({"sku": sku}, {"outbox": 0})]

    async def change(
        self, location_id: str, sku: str, rule: Callable[[StockLevel], R], cause: Mapping[str, Any]
    ) -> tuple[StockLevel, R]:
        """Apply `rule` to the stock and write its effect in one conditional write.

        Returns the stock as it is after the change (or as it was, when the rule moved nothing
        or found a shortage) and what the rule returned. A rule that raises writes nothing.
        """
        key = stock_id(location_id, sku)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Lock()
        async with queue:
            return await self._change(key, location_id, sku, rule, cause)

    async def _change(
        self, key: str, location_id: str, sku: str, rule: Callable[[StockLevel], R], cause: Mapping[str, Any]
    ) -> tuple[StockLevel, R]:
        request = request_effect_id(f"stock/{key}")
        if request is not None:
            cause = {**cause, "request": request}
        for attempt in range(self.MAX_ATTEMPTS):
            doc = await self.collection.find_one({"_id": key}, {"outbox": 0})
            current = to_level(doc) if doc else StockLevel(location_id, sku)
            if request is not None and doc is not None and request in doc.get("recent_requests", []):
                # This keyed request already changed it: a retry after a crash moves nothing.
                return current, cast(R, Effect(current))
            outcome = rule(current)
            if not isinstance(outcome, Effect) or outcome.level == current:
                return current, outcome
            written = await self._write(key, doc, current, outcome.level, cause)
            if written is not None:
                self._wake_relay()
                return written, outcome
            # Someone else changed this stock since we read it: back off a little, re-decide.
            await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise ConcurrencyConflict(f"stock {key} kept changing")

    async def _write(
        self, key: str, doc: Document | None, before: StockLevel, after: StockLevel, cause: Mapping[str, Any]
    ) -> StockLevel | None:
        """The stock as written (with its new seq), or None when another change came first."""
        seq = int(doc.get("seq", 0)) if doc else 0
        after = replace(after, seq=seq + 1)
        event = domain.level_changed(after)
        entry = {"seq": (seq + 1) * 1000, "event": event.model_dump(mode="json")}
        last_change = {**cause, "at": now_iso()}
        # The keys of the last requests that changed this stock, written with the change itself.
        recent = list(doc.get("recent_requests", [])) if doc else []
        if "request" in cause:
            recent = [*recent, cause["request"]][-RECENT_REQUESTS:]
        if doc is None:
            fresh = {
                "_id": key, **_fields(after), "seq": 1, "version": 1, "last_change": last_change,
                "recent_requests": recent,
                "outbox": {event.id: entry}, "outbox_pending": True,
            }  # fmt: skip
            try:
                await self.collection.insert_one(fresh)
            except DuplicateKeyError:
                return None
            return after
        to_set: Document = {
            "on_hand": after.on_hand, "reserved": after.reserved, "seq": seq + 1, "last_change": last_change,
            "recent_requests": recent,
            f"outbox.{event.id}": entry, "outbox_pending": True,
        }  # fmt: skip
        to_unset: Document = {}
        for name, old, new in (
            ("holds", before.holds, after.holds),
            ("commits", _commit_docs(before.commits), _commit_docs(after.commits)),
        ):
            for identifier in old.keys() | new.keys():
                path = f"{name}.{map_key(identifier)}"
                if identifier not in new:
                    to_unset[path] = ""
                elif old.get(identifier) != new[identifier]:
                    to_set[path] = new[identifier]
        update: Document = {"$set": to_set, "$inc": {"version": 1}}
        if to_unset:
            update["$unset"] = to_unset
        result = await self.collection.update_one({"_id": key, "seq": seq}, update)
        return after if result.matched_count == 1 else None

    async def _ensure_indexes(self) -> None:
        if not self._indexed:
            await self.collection.create_index("sku")
            self._indexed = True


def to_level(doc: Document) -> StockLevel:
    return StockLevel(
        location_id=doc["location_id"],
        sku=doc["sku"],
        on_hand=int(doc.get("on_hand", 0)),
        reserved=int(doc.get("reserved", 0)),
        holds={from_map_key(k): int(v) for k, v in (doc.get("holds") or {}).items()},
        commits={
            from_map_key(k): Commit(
                v["fulfillment_order_id"], v["order_id"], int(v["quantity"]), CommitState(v["state"])
            )
            for k, v in (doc.get("commits") or {}).items()
        },
        seq=int(doc.get("seq", 0)),
    )


def _fields(level: StockLevel) -> Document:
    return {
        "location_id": level.location_id,
        "sku": level.sku,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "holds": {map_key(fo): q for fo, q in level.holds.items()},
        "commits": {map_key(k): v for k, v in _commit_docs(level.commits).items()},
    }


def _commit_docs(commits: Mapping[str, Commit]) -> dict[str, Document]:
    return {
        fid: {"fulfillment_order_id": c.fulfillment_order_id, "order_id": c.order_id, "quantity": c.quantity,
              "state": c.state.value}
        for fid, c in commits.items()
    }  # fmt: skip
