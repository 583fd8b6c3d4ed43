"""The vocabulary of aggregates, for domain code: what a rule gets, what it decides, and how an
aggregate becomes a stored document and back. No database here (shared.store does the storing),
so a pure domain module imports this without importing pymongo.

A rule is a pure function: it gets the aggregate as stored (None when there is none yet) and
returns a `Change` (the aggregate as it should be now and the events to emit), or None when
there is nothing to do. `A` is the aggregate's type: a typed model (a frozen dataclass or
pydantic model), stored through its `StoreMapping` (most often a `ModelMapping`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol

from pydantic import TypeAdapter
from typing_extensions import TypeVar

from shared.events import CloudEvent
from shared.text import FROM_THE_STORE

Document = dict[str, Any]
"""An aggregate as the store holds it (without the store's bookkeeping), `id` as its key."""

A = TypeVar("A")


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


M = TypeVar("M")


class ModelMapping(Generic[M]):
    """An aggregate stored as its typed model's fields, in their JSON form, plus the fields its
    queries use (`index`: computed from the model on every write, never by the rules). Loading
    skips the text checks (shared.text.FROM_THE_STORE: what is stored was checked coming in) and
    ignores what the model does not know (the store's `version`, the index fields); `exclude`:
    the model's fields the store writes itself (`id` as `_id`, `version`). A service
    whose stored shape differs from the model's (fields written before they existed, left out
    when empty) overrides `stored` or `load`: the one place that knows it."""

    def __init__(
        self,
        kind: type[M],
        index: Callable[[M], Mapping[str, object]] | None = None,
        *,
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        self._adapter: TypeAdapter[M] = TypeAdapter(kind)
        self._index = index
        self._exclude = exclude

    def load(self, document: Document) -> M:
        return self._adapter.validate_python(document, context=FROM_THE_STORE)

    def dump(self, aggregate: M) -> Document:
        document = self.stored(aggregate)
        if self._index is not None:
            document.update(self._index(aggregate))
        return document

    def stored(self, aggregate: M) -> Document:
        """The aggregate's own fields as stored (without the index fields)."""
        fields: Document = self._adapter.dump_python(aggregate, mode="json", exclude=set(self._exclude) or None)
        return fields


@dataclass(frozen=True)
class Stored(Generic[A]):
    """An aggregate with the document it was read or written as: `AggregateStore.apply_to`
    writes its next change over that document without reading it again."""

    aggregate: A
    document: Document = field(repr=False)

    def applied(self, event_id: str) -> bool:
        """Whether the event was applied to it already (it is in the aggregate's inbox)."""
        return event_id in self.document.get("inbox", {})

    @property
    def unsent(self) -> bool:
        """Whether events it announced still wait in its outbox."""
        return bool(self.document.get("outbox"))
