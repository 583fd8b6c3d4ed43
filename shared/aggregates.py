"""The vocabulary of aggregates, for domain code: what a rule gets, what it decides, and how an
aggregate becomes a stored document and back. No database here (shared.store does the storing),
so a pure domain module imports this without importing pymongo.

A rule is a pure function: it gets the aggregate as stored (None when there is none yet) and
returns a `Change` (the aggregate as it should be now and the events to emit), or None when
there is nothing to do. `A` is the aggregate's type: a typed model where the service has one,
else the stored document itself (`Document`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol

from typing_extensions import TypeVar

from shared.events import CloudEvent

Document = dict[str, Any]
"""An aggregate as the store holds it (without the store's bookkeeping), `id` as its key."""

A = TypeVar("A", default=Document)


@dataclass
class Change(Generic[A]):
    """What a rule decided: the aggregate as it should be now and the events to emit."""

    document: A
    events: list[CloudEvent] = field(default_factory=list)


Rule = Callable[[A | None], Change[A] | None]
"""Decides a change of one aggregate (None: it does not exist yet)."""

Missing = Literal["skip", "raise", "create"]
"""What `AggregateStore.apply` does when the aggregate does not exist: `skip` the rule and
return None, `raise` the error the caller gave, or let the rule `create` it (it gets None)."""


class StoreMapping(Protocol[A]):
    """How one kind of aggregate is stored: `load` reads a stored document (with `id` and
    `version`, without the store's bookkeeping) as the aggregate; `dump` writes it as a document,
    with the index fields its queries need, which are the mapping's business, not the rules'."""

    def load(self, document: Document) -> A: ...

    def dump(self, aggregate: A) -> Document: ...


class AsDocument:
    """The mapping of a service that keeps its aggregates as plain documents: none at all."""

    def load(self, document: Document) -> Document:
        return document

    def dump(self, aggregate: Document) -> Document:
        return aggregate


AS_DOCUMENT = AsDocument()
