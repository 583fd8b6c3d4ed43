"""Typed aggregates at the store boundary (issue 10, "One typed model per aggregate ... loaded and
dumped at the store boundary; index fields are computed by the store mapping, not by the rules"):
an AggregateStore built with a StoreMapping hands rules and callers the typed model, stores what
`dump` says (index fields included) and reads it back through `load`, on the embedded store alone.
Also: one `apply(..., missing=...)` says what happens when the aggregate does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from pymongo import AsyncMongoClient

from shared.aggregates import Change, Document, StoreMapping
from shared.catalog import InventoryLevel
from shared.events import new_event
from shared.store import AggregateMissing, AggregateStore


class Shelf(BaseModel):
    """A small aggregate: frozen, so a rule returns a new one instead of changing its argument."""

    model_config = ConfigDict(frozen=True)

    id: str
    sku: str
    on_hand: int
    version: int = 0


class ShelfMapping:
    """Stores a Shelf with an index field no rule knows about: its sku in lower case."""

    def load(self, document: Document) -> Shelf:
        return Shelf.model_validate({k: v for k, v in document.items() if k != "sku_key"})

    def dump(self, aggregate: Shelf) -> Document:
        return {**aggregate.model_dump(exclude={"id", "version"}), "sku_key": aggregate.sku.lower()}


def receive(count: int) -> Callable[[Shelf], Change[Shelf]]:
    """A rule over the typed model: it reads attributes, not string keys."""

    def rule(shelf: Shelf) -> Change[Shelf]:
        level = InventoryLevel(sku=shelf.sku, location_id="wh", on_hand=shelf.on_hand + count, reserved=0,
                               available=shelf.on_hand + count)  # fmt: skip
        event = new_event("inventory", "inventory.level_changed", shelf.id, level)
        return Change(shelf.model_copy(update={"on_hand": shelf.on_hand + count}), [event])

    return rule


@pytest.fixture
async def shelves(mongo_uri: str) -> AsyncIterator[AggregateStore[Shelf]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_uri, tz_aware=True)
    await client.drop_database("typed")
    woken: list[tuple[str, Any]] = []
    mapping: StoreMapping[Shelf] = ShelfMapping()
    yield AggregateStore(client["typed"]["shelves"], lambda *where: woken.append(where), mapping=mapping)
    await client.close()


async def test_a_typed_aggregate_round_trips_through_create_apply_get_and_find(
    shelves: AggregateStore[Shelf],
) -> None:
    created = await shelves.create("s1", Change(Shelf(id="s1", sku="MUG-1", on_hand=2)))
    assert created == Shelf(id="s1", sku="MUG-1", on_hand=2, version=1)

    applied = await shelves.apply("s1", receive(3), missing="raise")
    assert applied == Shelf(id="s1", sku="MUG-1", on_hand=5, version=2)
    assert await shelves.get("s1") == applied

    # The index field is the mapping's: stored beside the model's fields, found by, never loaded.
    stored = await shelves.collection.find_one({"_id": "s1"})
    assert stored is not None and stored["sku_key"] == "mug-1" and stored["on_hand"] == 5
    assert [entry["event"]["type"] for entry in stored["outbox"].values()] == ["inventory.level_changed"]
    assert await shelves.find({"sku_key": "mug-1"}) == [applied]
    assert await shelves.find({"sku_key": "MUG-1"}) == []


async def test_apply_says_once_what_happens_when_the_aggregate_is_missing(shelves: AggregateStore[Shelf]) -> None:
    assert await shelves.apply("nope", receive(1), missing="skip") is None
    with pytest.raises(AggregateMissing):
        await shelves.apply("nope", receive(1), missing="raise")
    with pytest.raises(KeyError, match="the caller's own"):
        await shelves.apply("nope", receive(1), missing=KeyError("the caller's own"))
    assert await shelves.get("nope") is None

    def create_or_receive(shelf: Shelf | None) -> Change[Shelf]:
        return Change(Shelf(id="nope", sku="CUP", on_hand=1)) if shelf is None else receive(1)(shelf)

    assert await shelves.apply("nope", create_or_receive) == Shelf(id="nope", sku="CUP", on_hand=1, version=1)
    assert await shelves.apply("nope", create_or_receive, missing="create") == Shelf(
        id="nope", sku="CUP", on_hand=2, version=2
    )
