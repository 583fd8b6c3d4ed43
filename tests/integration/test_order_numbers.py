"""Order numbers against the real embedded store (nx-27017): the sequencer (services/orders/
numbering.py) gives #1001, #1002, ... without a gap or a repeat, whatever the concurrency, the
replicas (two Sequencers over one store), or a crash between taking a number and writing it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from services.orders import domain, search, store
from services.orders.numbering import COUNTER, Sequencer
from shared.store import AggregateStore
from tests.unit.test_order_rules import NOW, order_request


def orders_of(db: Any) -> AggregateStore[domain.Order]:
    return AggregateStore(db["orders"], lambda *_: None, mapping=store.MAPPING)


async def placed(orders: AggregateStore[domain.Order], n: int = 1) -> list[str]:
    ids = []
    for _ in range(n):
        order_id = str(uuid.uuid4())
        await orders.create(order_id, domain.place(order_request(), NOW, order_id))
        ids.append(order_id)
    return ids


async def test_concurrent_orders_on_two_replicas_get_distinct_consecutive_numbers(db: Any) -> None:
    """Issue 12: "200 concurrent orders get 200 distinct consecutive numbers with two orders
    replicas" (here: two sequencers, each its own lock, over one store)."""
    orders = orders_of(db)
    replicas = [Sequencer(db["order_numbers"], orders), Sequencer(db["order_numbers"], orders)]
    ids = await placed(orders, 120)
    numbered = await asyncio.gather(*(replicas[i % 2].number(order_id) for i, order_id in enumerate(ids)))
    assert sorted(o.number for o in numbered if o.number) == list(range(1001, 1121))
    again = await replicas[1].number(ids[0])
    assert again.number == numbered[0].number, "numbering is idempotent: never renumbered"
    stored = [await orders.get(order_id) for order_id in ids]
    assert all(o is not None and [e.type for e in o.timeline] == ["order.created"] for o in stored), "announced once"


async def test_a_number_taken_by_a_replica_that_crashed_before_writing_it_is_not_skipped(db: Any) -> None:
    """The counter took #1001 for an order, and the process died before the order held it: the
    next numbering writes #1001 onto that order first, then takes #1002."""
    orders = orders_of(db)
    crashed, later = await placed(orders, 2)
    await db["order_numbers"].insert_one({"_id": COUNTER, "last": 1001, "holder": crashed, "previous": None})
    numbered = await Sequencer(db["order_numbers"], orders).number(later)
    assert numbered.number == 1002
    first = await orders.get(crashed)
    assert first is not None and first.number == 1001


async def test_a_void_claim_is_given_back_not_left_as_a_gap(db: Any) -> None:
    """Two numberings of one order raced and both took a number: the order holds the first, so the
    counter's claim of the second is void and goes back; the next order gets it."""
    orders = orders_of(db)
    twice, other = await placed(orders, 2)
    sequencer = Sequencer(db["order_numbers"], orders)
    assert (await sequencer.number(twice)).number == 1001
    await db["order_numbers"].update_one({"_id": COUNTER}, {"$set": {"last": 1002, "holder": twice, "previous": twice}})
    assert (await sequencer.number(other)).number == 1002


async def test_the_sweep_numbers_an_order_whose_placing_stopped_before_numbering(db: Any) -> None:
    orders = orders_of(db)
    [stuck] = await placed(orders)
    await db["orders"].update_one({"_id": stuck}, {"$set": {"sort_created_at": "~2020-01-01T00:00:00.000000+00:00|x"}})
    assert await Sequencer(db["order_numbers"], orders).sweep() == 1
    swept = await orders.get(stuck)
    assert swept is not None and swept.number == 1001


async def test_an_orders_terms_find_it_by_number_name_email_and_sku(db: Any) -> None:
    terms = search.Terms(db["order_terms"])
    orders = orders_of(db)
    [order_id] = await placed(orders)
    order = await Sequencer(db["order_numbers"], orders).number(order_id)
    await terms.add(order_id, order.created_at, search.terms_of(order))
    await terms.add(order_id, order.created_at, search.terms_of(order))  # again: idempotent
    for word in ("1001", "buyer@example.com", "mug-1"):
        found = await terms.page(word, {}, -1, 10)
        assert [found_id for found_id, _ in found] == [order_id], word
    await terms.remove(order_id, ["mug-1"])
    assert await terms.page("mug-1", {}, 1, 10) == []
