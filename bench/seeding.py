"""Seeding for bench.growth: copies of real orders' documents, written straight into the stores.

Through Kafka, 50,000 orders would take hours; so the documents the services wrote for a few real
orders are read back (`read_templates`), copied with fresh ids and older times (`Copier`), and
inserted in batches (`Seeder`, `merge_entries` for the entries shared documents keep per order).
It lives apart from bench.growth, which places, measures and reports, because this part is pure
document plumbing and is unit-tested on its own (tests/unit/test_bench_growth_copies.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import bson
from bson import json_util
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from bench.harness import SERVICES

Document = dict[str, Any]
SPREAD_S = 90 * 86_400  # seeded orders are from the last 90 days

# What is rewritten in a copied document's JSON: every UUID (to a fresh one, the same one
# everywhere in that copy), every RFC 3339 time and every epoch number near now (moved back).
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:\+00:00|Z)"
_EPOCH = r"(?<![\w.])1[6-9]\d{8}(?:\d{3})?(?:\.\d+)?(?!\w)"
_OID = r'(?<="\$oid": ")[0-9a-f]{24}'
TOKENS = re.compile(f"(?P<uuid>{_UUID})|(?P<time>{_TIME})|(?P<epoch>{_EPOCH})|(?P<oid>{_OID})")
UUIDS = re.compile(_UUID)
TIMESPEC = {0: "seconds", 3: "milliseconds", 6: "microseconds"}


def dumps(value: Any) -> str:
    """A document as text to copy: "J" + JSON, or "X" + Extended JSON when it holds more than JSON
    can (dates, ObjectIds), which is slower to read back."""
    try:
        return "J" + json.dumps(value)
    except TypeError:
        return "X" + json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)


def loads(text: str) -> Any:
    return json.loads(text[1:]) if text[0] == "J" else json_util.loads(text[1:])


@dataclass
class Copier:
    """Copies documents (as JSON text) with fresh ids and times moved by `shift` seconds; epoch
    numbers are moved only inside [epoch_low, epoch_high] (so counts and prices are left alone)."""

    epoch_low: float
    epoch_high: float

    def copy(self, texts: list[str], shift: float, replace: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """The copies, and which new id each old one became."""
        ids: dict[str, str] = {}
        moved = timedelta(seconds=shift)

        def rewrite(match: re.Match[str]) -> str:
            token = match.group()
            if match.lastgroup == "uuid":
                key = token.lower()
                new = ids.get(key)
                if new is None:
                    new = ids[key] = str(uuid.uuid4())
                return new
            if match.lastgroup == "oid":
                oid = ids.get(token)
                if oid is None:
                    oid = ids[token] = str(bson.ObjectId())
                return oid
            if match.lastgroup == "time":
                if token >= "9000":  # a sentinel such as "no deadline": keep it
                    return token
                at = datetime.fromisoformat(token.replace("Z", "+00:00")) + moved
                digits = len(token.split(".", 1)[1].split("+")[0].rstrip("Z")) if "." in token else 0
                text = at.isoformat(timespec=TIMESPEC.get(digits, "microseconds"))
                return text.replace("+00:00", "Z") if token.endswith("Z") else text
            scale = 1000.0 if len(token.split(".")[0]) == 13 else 1.0
            value = float(token)
            if not self.epoch_low <= value / scale <= self.epoch_high:
                return token
            value += shift * scale
            return repr(value) if "." in token else str(round(value))

        out = []
        for text in texts:
            copied = TOKENS.sub(rewrite, text)
            for old, new in replace.items():
                copied = copied.replace(old, new)
            out.append(copied)
        return out, ids


@dataclass
class Template:
    """One real order's documents, by (database, collection), as JSON text; and the entries that
    shared documents (a stock document) keep for it in maps keyed by one of its ids."""

    kind: str
    order_id: str
    docs: list[tuple[str, str, str]] = field(default_factory=list)
    entries: list[tuple[str, str, Any, str, str]] = field(default_factory=list)  # db, coll, _id, map field, [k, v]


@dataclass
class Seeder:
    """Writes copies of templates into the stores, in batches, while the next batch is copied."""

    mongo: AsyncMongoClient[Document]
    copier: Copier
    rng: random.Random
    batch: int = 500
    pending: set[asyncio.Task[Any]] = field(default_factory=set)
    duplicates: int = 0

    async def _flush(self, database: str, collection: str, docs: list[Document]) -> None:
        await self._wait(1)  # keep the store busy, but not buried
        self.pending.add(asyncio.create_task(self.mongo[database][collection].insert_many(docs, ordered=False)))

    async def _wait(self, at_most: int) -> None:
        """Until at most `at_most` inserts are under way; a failed one stops the run."""
        while len(self.pending) > at_most:
            done, self.pending = await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                try:
                    task.result()
                except BulkWriteError as failed:
                    # A copy that collides with one already stored (its template shares a document
                    # with another's) is one document fewer of volume, not a reason to stop.
                    if any(error.get("code") != 11000 for error in failed.details.get("writeErrors", [])):
                        raise
                    self.duplicates += len(failed.details["writeErrors"])

    async def seed(
        self,
        pick: Callable[[int], Template],
        count: int,
        replace: Callable[[int], dict[str, str]],
        databases: frozenset[str] | None = None,
        with_entries: bool = False,
    ) -> tuple[dict[tuple[str, str, Any, str], dict[str, Any]], list[str]]:
        """`count` copies, the i-th of pick(i): the map entries to add to shared documents (with
        `with_entries`), and the ids of some of the orders copied (up to 1,000)."""
        buffers: dict[tuple[str, str], list[Document]] = defaultdict(list)
        entries: dict[tuple[str, str, Any, str], dict[str, Any]] = defaultdict(dict)
        order_ids: list[str] = []
        for i in range(count):
            template = pick(i)
            docs = [d for d in template.docs if databases is None or d[0] in databases]
            texts = [text for _, _, text in docs] + [entry[4] for entry in template.entries if with_entries]
            shift = -(3_600 + self.rng.uniform(0, SPREAD_S))
            copies, ids = self.copier.copy(texts, shift, replace(i))
            if len(order_ids) < 1_000 and template.order_id in ids:
                order_ids.append(ids[template.order_id])
            for (database, collection, _), text in zip(docs, copies, strict=False):
                buffer = buffers[database, collection]
                buffer.append(settled(loads(text)))
                if len(buffer) >= self.batch:
                    await self._flush(database, collection, buffer)
                    buffers[database, collection] = []
            if with_entries:
                for (database, collection, doc_id, map_field, _), text in zip(
                    template.entries, copies[len(docs) :], strict=True
                ):
                    key, value = loads(text)
                    entries[database, collection, doc_id, map_field][key] = value
            if i % 100 == 99:
                await asyncio.sleep(0)  # let the inserts go out
        for (database, collection), buffer in buffers.items():
            if buffer:
                await self._flush(database, collection, buffer)
        await self._wait(0)
        return entries, order_ids


async def merge_entries(
    mongo: AsyncMongoClient[Document], entries: dict[tuple[str, str, Any, str], dict[str, Any]]
) -> None:
    """Adds copied entries to the maps of shared documents (read, merged, written whole, version bumped)."""
    for (database, collection, doc_id, map_field), new in entries.items():
        coll = mongo[database][collection]
        doc = await coll.find_one({"_id": doc_id})
        if doc is None:
            continue
        merged = {**doc.get(map_field, {}), **new}
        update: Document = {"$set": {map_field: merged}}
        if "version" in doc:
            update["$inc"] = {"version": 1}
        await coll.update_one({"_id": doc_id}, update)


def settled(doc: Document) -> Document:
    """A copy as its original is once nothing is left to happen to it. A plan is confirmed by the
    sweep a minute after its last revision (`materialise_check_at` then cleared): a template read
    sooner still carries the time, which moved back with the copy would make every copy due at once."""
    if doc.get("materialise_check_at") is not None:
        doc["materialise_check_at"] = None
    return doc


def per_order(doc: Document) -> bool:
    """A document kept per order (or per fulfilment...): its id is a UUID or an ObjectId. Others
    (a location, a stock level, the shop's settings) are shared and never copied."""
    doc_id = doc.get("_id")
    return isinstance(doc_id, bson.ObjectId) or (isinstance(doc_id, str) and UUIDS.search(doc_id) is not None)


async def read_templates(
    mongo: AsyncMongoClient[Document], kinds: dict[str, str], shared_with: str | None = None
) -> tuple[list[Template], list[tuple[str, str, Any]]]:
    """The documents of each order in `kinds` (order id -> kind), from every service's store: those
    that name the order, then those that name one of the ids in those (one step). Also the shared
    documents that name `shared_with` (a sku), as (database, collection, _id)."""
    found: list[tuple[str, str, Document, str]] = []
    for database in SERVICES:
        for collection in await mongo[database].list_collection_names():
            if collection == "idempotency_keys" or "outbox" in collection:  # never copy events to send
                continue
            async for doc in mongo[database][collection].find({}):
                found.append((database, collection, doc, dumps(doc)))
    templates = {order_id: Template(kind, order_id) for order_id, kind in kinds.items()}
    ids: dict[str, set[str]] = {}
    taken: set[int] = set()
    for order_id, template in templates.items():
        for n, (database, collection, doc, text) in enumerate(found):
            if n not in taken and per_order(doc) and order_id in text:
                template.docs.append((database, collection, text))
                taken.add(n)
        ids[order_id] = {u.lower() for _, _, text in template.docs for u in UUIDS.findall(text)}
    for order_id, template in templates.items():
        for n, (database, collection, doc, text) in enumerate(found):
            if n not in taken and per_order(doc) and ids[order_id] & {u.lower() for u in UUIDS.findall(text)}:
                template.docs.append((database, collection, text))
                taken.add(n)
    shared: list[tuple[str, str, Any]] = []
    for database, collection, doc, text in found:
        if per_order(doc):
            continue
        if shared_with is not None and f'"{shared_with}"' in text:
            shared.append((database, collection, doc["_id"]))
        for map_field, value in doc.items():
            if not isinstance(value, dict):
                continue
            for key, entry in value.items():
                for order_id, template in templates.items():
                    if key.lower() in ids[order_id]:
                        pair = dumps([key, entry])
                        template.entries.append((database, collection, doc["_id"], map_field, pair))
    return list(templates.values()), shared


def mix(templates: list[Template]) -> Callable[[int], Template]:
    """Of every 10 copies, 8 of a fulfilled order (each one in turn), 1 pending, 1 cancelled."""
    kinds = {kind: [t for t in templates if t.kind == kind] for kind in ("fulfilled", "pending", "cancelled")}
    fulfilled = kinds["fulfilled"]

    def pick(i: int) -> Template:
        turn, slot = divmod(i, 10)
        for kind, at in (("pending", 8), ("cancelled", 9)):
            if slot == at and kinds[kind]:
                return kinds[kind][turn % len(kinds[kind])]
        return fulfilled[(turn * 10 + slot) % len(fulfilled)]

    return pick


async def wait_settled(mongo: AsyncMongoClient[Document], timeout: float = 60) -> None:
    """Until no stored document has events left in its outbox: a copy must not carry any."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        busy = 0
        for database in SERVICES:
            for collection in await mongo[database].list_collection_names():
                async for doc in mongo[database][collection].find({}, {"outbox": 1}):
                    busy += bool(doc.get("outbox"))
        if not busy:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the stores still hold unrelayed events")
