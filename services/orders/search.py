"""The words an order is found by (`GET /orders?q=`): its number, its customer's name and email,
its skus and the words of its comments, kept as one small document per (term, order) in
`order_terms`, indexed by (term, created-at key). The embedded store cannot index an array's
members, so an array of terms on the order would be read order by order; this collection is
walked from its index instead.

The terms are an index, not the truth: a search reads the orders they point at and checks them
(listing.matches), so a term left over from an earlier version of an order finds nothing. That is
what makes keeping them simple and safe: terms an order gains are written before the order, and
those it loses removed after it, so a crash in between leaves a term too many, never one missing.
A new order's terms (its number's among them) are written by its numbering, all at once, before
it holds its number, which is when it is announced (services/orders/numbering.py); a placing
that stopped before is numbered, and so made searchable, by the sequencer's sweep.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pymongo import ReplaceOne

from services.orders import store
from services.orders.domain import Order
from shared.catalog import Customer
from shared.store import Collection, Filter

MAX_TERMS = 400
"""An order's terms, at most (a long comment's words beyond it are not searchable)."""
MAX_TERM_CHARS = 64

_TOKEN = re.compile(r"[^\s,;:!?()\[\]{}\"'<>/\\|*]+")


def tokens(text: str) -> list[str]:
    """The searchable words of `text`: lower case, split on spaces and punctuation that no sku or
    email holds, a leading '#' dropped ("#1001" is 1001), trailing dots dropped."""
    words = []
    for raw in _TOKEN.findall(text.lower()):
        word = raw.lstrip("#").rstrip(".")
        if word:
            words.append(word[:MAX_TERM_CHARS])
    return words


def customer_terms(customer: Customer) -> set[str]:
    """The terms the buyer is found by: the whole email address, the words of the name."""
    email = [customer.email.lower()[:MAX_TERM_CHARS]] if customer.email else []
    return {*email, *tokens(customer.name)}


def terms_of(order: Order) -> set[str]:
    """Every term the order is found by."""
    found: list[str] = []
    if order.number is not None:
        found.append(str(order.number))
    found.extend(sorted(customer_terms(order.customer)))
    found.extend(tokens(" ".join(line.sku for line in order.line_items)))
    for comment in order.comments:
        found.extend(tokens(comment.text))
    return set(dict.fromkeys(found[:MAX_TERMS]))


def term_id(term: str, order_id: str) -> str:
    return f"{term}\x1f{order_id}"


class Terms:
    """The `order_terms` collection."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    async def add(self, order_id: str, created_at: str, terms: Iterable[str]) -> None:
        """Index the order under `terms` (idempotent)."""
        key = store.list_keys(order_id, created_at, "")[store.LIST_KEYS["created_at"]]
        writes = [
            ReplaceOne({"_id": term_id(term, order_id)},
                       {"_id": term_id(term, order_id), "term": term, "order_id": order_id,
                        store.LIST_KEYS["created_at"]: key}, upsert=True)
            for term in terms
        ]  # fmt: skip
        if writes:
            await self.collection.bulk_write(writes, ordered=False)

    async def remove(self, order_id: str, terms: Iterable[str]) -> None:
        ids = [term_id(term, order_id) for term in terms]
        if ids:
            await self.collection.delete_many({"_id": {"$in": ids}})

    async def page(self, term: str, bounds: Filter, direction: int, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` orders holding `term` within `bounds` (on the created-at key), in the
        listing's order: each order's id and created-at key."""
        key = store.LIST_KEYS["created_at"]
        query: Filter = {"term": {"$eq": term}}
        if bounds:
            query[key] = bounds
        cursor = self.collection.find(query, {"order_id": 1, key: 1}).sort([(key, direction)]).limit(limit)
        return [(str(entry["order_id"]), str(entry[key])) async for entry in cursor]
