"""The store boundary's own types: a collection and a database of the platform's store as pymongo
reads them, and the filters the query modules build. Documents are raw only on this side of the
boundary (shared.store, shared.outbox, the mappings' stored shapes, the upgrades); a rule sees
typed aggregates (shared.aggregates)."""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.aggregates import Document

Collection = AsyncCollection[Document]
Database = AsyncDatabase[Document]

Filter = dict[str, object]
"""A MongoDB query filter, update or projection as a query module builds it: the store's
language (operators and literals), not an aggregate; nothing reads a value back out of it."""
