"""The outbox relay against the real embedded store: order per aggregate, nothing lost,
and two relays racing over the same outbox do not both publish it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from deploy.local_stack import LocalStack
from shared.catalog import DisplayFulfillmentStatus, OrderFulfillmentStatusChanged
from shared.events import CloudEvent, new_event
from shared.outbox import OutboxRelay
from shared.store import AggregateStore, Change, Document
from tests.documents import AS_DOCUMENT
from tests.event_data import data_of


@pytest.fixture
async def collection(stack: LocalStack) -> AsyncIterator[AsyncCollection[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongodb_uri)
    yield client["relay_tests"][f"aggregates_{uuid.uuid4().hex}"]
    await client.close()


def status_event(order_id: str, status: str) -> CloudEvent:
    data = OrderFulfillmentStatusChanged(order_id=order_id, fulfillment_status=DisplayFulfillmentStatus(status))
    return new_event("orders", "order.fulfillment_status_changed", order_id, data)


async def test_events_are_published_in_the_order_they_were_written(collection: AsyncCollection[Document]) -> None:
    published: list[CloudEvent] = []

    async def publish(event: CloudEvent) -> None:
        published.append(event)

    relay = OutboxRelay([collection], publish, poll_seconds=60)
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    statuses = ["IN_PROGRESS", "PARTIALLY_FULFILLED", "FULFILLED"]
    for status in statuses:

        def set_status(doc: Document | None, s: str = status) -> Change[Document]:
            return Change({**(doc or {}), "s": s}, [status_event("o-1", s)])

        await store.apply("o-1", set_status)
    assert await relay.relay_once() == 3
    assert [e.data["fulfillment_status"] for e in published] == statuses
    assert await relay.relay_once() == 0, "a relayed event is not relayed again"
    stored = await collection.find_one({"_id": "o-1"})
    assert stored is not None and stored["outbox"] == {} and not stored["outbox_pending"]


async def test_a_failed_publish_keeps_the_event_for_the_next_pass(collection: AsyncCollection[Document]) -> None:
    attempts: list[str] = []

    async def flaky_publish(event: CloudEvent) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise ConnectionError("broker away")

    relay = OutboxRelay([collection], flaky_publish, poll_seconds=60, retry_seconds=0)
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    event = status_event("o-2", "FULFILLED")
    await store.apply("o-2", lambda _: Change({"s": 1}, [event]))
    assert await relay.relay_once() == 0
    assert relay.failed == 1
    # The failed pass handed its lease back (after retry_seconds): the next pass retries it.
    assert await relay.relay_once() == 1
    assert attempts == [event.id, event.id]


async def test_one_aggregate_whose_events_cannot_go_out_does_not_stop_the_others(
    collection: AsyncCollection[Document],
) -> None:
    """One request wedged fulfillment's outbox: the relay retried the document whose event the
    producer refused first on every pass, and every later order of every customer stayed unrelayed.
    Head-of-line blocking: one aggregate's failure must not stop the others."""
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        if event.subject == "wedged":
            raise RuntimeError("MessageSizeTooLargeError, say")
        published.append(event.subject)

    relay = OutboxRelay([collection], publish, poll_seconds=60, retry_seconds=30)
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    await store.apply("wedged", lambda _: Change({"s": 1}, [status_event("wedged", "FULFILLED")]))
    for i in range(5):

        def later(_: Document | None, i: int = i) -> Change[Document]:
            return Change({"s": 1}, [status_event(f"later-{i}", "FULFILLED")])

        await store.apply(f"later-{i}", later)
    assert await relay.relay_once() == 5
    assert sorted(published) == [f"later-{i}" for i in range(5)]
    # The wedged aggregate keeps its event and waits out its retry time instead of being tried every pass.
    assert await relay.relay_once() == 0
    assert relay.failed == 1
    wedged = await collection.find_one({"_id": "wedged"})
    assert wedged is not None and wedged["outbox_pending"] and len(wedged["outbox"]) == 1


async def test_two_relays_racing_publish_each_event_once(collection: AsyncCollection[Document]) -> None:
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        await asyncio.sleep(0.001)
        published.append(event.id)

    first = OutboxRelay([collection], publish, poll_seconds=60)
    second = OutboxRelay([collection], publish, poll_seconds=60)
    store = AggregateStore(collection, first.wake, mapping=AS_DOCUMENT)
    written = []
    for i in range(30):
        event = status_event(f"o-{i}", "FULFILLED")
        written.append(event.id)

        def emit(_: Document | None, e: CloudEvent = event) -> Change[Document]:
            return Change({"s": 1}, [e])

        await store.apply(f"o-{i}", emit)
    await asyncio.gather(first.relay_once(), second.relay_once())
    assert sorted(published) == sorted(written)


async def test_a_writer_racing_the_relay_cannot_restore_its_lease(collection: AsyncCollection[Document]) -> None:
    """A copy read while the relay held the aggregate must not be written back over the relay's
    release: it would carry the lease back and hold the aggregate's next events until it ran out."""
    published: list[CloudEvent] = []

    async def publish(event: CloudEvent) -> None:
        published.append(event)

    relay = OutboxRelay([collection], publish, poll_seconds=60)
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    await store.apply("o-3", lambda _: Change({"s": 1}, [status_event("o-3", "IN_PROGRESS")]))
    claimed = relay._leased[collection.name].pop("o-3", None)  # the write took the lease: the relay has it
    assert claimed is not None
    read_during_relay = await collection.find_one({"_id": "o-3"})
    assert read_during_relay is not None and "relay_lease_epoch" in read_during_relay
    await relay._relay_document(collection, claimed)

    # The racing writer's copy is stale: its write is refused and it re-reads.
    change = Change({"s": 2}, [status_event("o-3", "FULFILLED")])
    assert await store._save("o-3", store.stored(read_during_relay), change, None) is None
    await store.apply("o-3", lambda doc: Change({**(doc or {}), "s": 2}, [status_event("o-3", "FULFILLED")]))
    assert await relay.relay_once() == 1, "the next event goes out at once, not after a lease runs out"
    assert [e.data["fulfillment_status"] for e in published] == ["IN_PROGRESS", "FULFILLED"]


async def test_events_written_while_the_relay_publishes_stay_pending_for_the_next_pass(
    collection: AsyncCollection[Document],
) -> None:
    """The relay marks an aggregate done in the same write that clears its outbox only if nothing
    was written since its claim; a writer's new events are never marked as gone out."""
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        published.append(data_of(event)["fulfillment_status"])

    relay = OutboxRelay([collection], publish, poll_seconds=60)
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    await store.apply("o-4", lambda _: Change({"s": 1}, [status_event("o-4", "IN_PROGRESS")]))
    claimed = relay._leased[collection.name].pop("o-4", None)  # the write took the lease: the relay has it
    assert claimed is not None
    await store.apply("o-4", lambda doc: Change({**(doc or {}), "s": 2}, [status_event("o-4", "FULFILLED")]))
    await relay._relay_document(collection, claimed)
    stored = await collection.find_one({"_id": "o-4"})
    assert stored is not None and stored["outbox_pending"] and len(stored["outbox"]) == 1
    assert await relay.relay_once() == 1
    assert published == ["IN_PROGRESS", "FULFILLED"]
    stored = await collection.find_one({"_id": "o-4"})
    assert stored is not None and not stored["outbox_pending"] and stored["outbox"] == {}


async def test_aggregates_waiting_out_a_retry_do_not_hide_the_ones_after_them(
    collection: AsyncCollection[Document],
) -> None:
    """Review finding: with a full batch of aggregates on their retry lease the probe returned the
    same batch on every pass and spun; the ones after it were never relayed. Batches go round by id."""
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        if event.subject.startswith("a-"):
            raise RuntimeError("this partition's leader is away")
        published.append(event.subject)

    relay = OutboxRelay([collection], publish, poll_seconds=60, retry_seconds=60)
    relay.BATCH = 3
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    for name in ("a-1", "a-2", "a-3", "b-1"):

        def fulfilled(_: Document | None, n: str = name) -> Change[Document]:
            return Change({"s": 1}, [status_event(n, "FULFILLED")])

        await store.apply(name, fulfilled)
    # As a replica that wrote them and died before relaying leaves them once its lease ran out:
    # this relay finds them by probing, a batch at a time.
    relay._leased.clear()
    await collection.update_many({}, {"$unset": {"relay_lease_epoch": ""}})
    assert await relay.relay_once() == 0  # the first batch: a-1..a-3 fail and wait out their retry
    assert await relay.relay_once() == 1  # the next batch starts after them
    assert published == ["b-1"]


async def test_an_aggregate_with_more_events_than_the_store_unsets_at_once_is_emptied(
    collection: AsyncCollection[Document],
) -> None:
    """nx-27017 silently ignores a $unset of 127 or more fields: an aggregate with that many events
    waiting was marked done but never emptied, and re-published them on every write after."""
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        published.append(event.id)

    relay = OutboxRelay([collection], publish, poll_seconds=60)
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    events = [status_event("o-many", "IN_PROGRESS") for _ in range(150)]
    await store.apply("o-many", lambda _: Change({"s": 1}, events))
    assert await relay.relay_once() == 150
    stored = await collection.find_one({"_id": "o-many"})
    assert stored is not None and stored["outbox"] == {} and not stored["outbox_pending"]
    assert await relay.relay_once() == 0 and len(published) == 150


async def test_a_pass_woken_by_a_write_claims_what_was_written_without_looking_for_more(
    collection: AsyncCollection[Document],
) -> None:
    """What an order costs: after a write the relay is told which aggregate holds new events and
    claims it straight away (no probe); what others left behind is found by the poll's probe."""
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        published.append(event.subject)

    relay = OutboxRelay([collection], publish, poll_seconds=60)
    left_behind = AggregateStore(collection, lambda *_: None, mapping=AS_DOCUMENT)  # as a crashed replica's write
    await left_behind.apply("o-old", lambda _: Change({"s": 1}, [status_event("o-old", "FULFILLED")]))
    # Its write took the relay's lease, and the replica died: the lease runs out (LEASE_SECONDS).
    await collection.update_one({"_id": "o-old"}, {"$set": {"relay_lease_epoch": 0}})
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    await store.apply("o-new", lambda _: Change({"s": 1}, [status_event("o-new", "FULFILLED")]))
    assert await relay.relay_once({collection.name: {"o-new"}}) == 1
    assert published == ["o-new"]
    assert await relay.relay_once() == 1  # the poll's pass
    assert published == ["o-new", "o-old"]


async def test_the_write_that_leaves_events_takes_the_lease_so_the_relay_claims_nothing(
    collection: AsyncCollection[Document],
) -> None:
    """Issue 15's store commands per order: the relay claimed every aggregate written (a
    find-and-modify per aggregate, two when the first missed) although the process that wrote it
    held it in hand; the write now takes the lease and the relay publishes from that document."""
    commands: list[str] = []
    real = collection.find_one_and_update

    async def counted(*args: Any, **kwargs: Any) -> Any:
        commands.append("findAndModify")
        return await real(*args, **kwargs)

    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        published.append(data_of(event)["fulfillment_status"])

    relay = OutboxRelay([collection], publish, poll_seconds=60)
    store = AggregateStore(collection, relay.wake, mapping=AS_DOCUMENT)
    for oid in ("o-7", "o-8"):
        await store.apply(oid, lambda _, o=oid: Change({"s": 1}, [status_event(o, "IN_PROGRESS")]))
    setattr(collection, "find_one_and_update", counted)  # noqa: B010 - count the claims from here
    await store.apply("o-7", lambda doc: Change({**(doc or {}), "s": 2}, [status_event("o-7", "FULFILLED")]))
    assert await relay.relay_once() == 3
    assert sorted(published) == ["FULFILLED", "IN_PROGRESS", "IN_PROGRESS"]
    assert commands == [], "no claim: every aggregate was written with its lease by this process"
    for oid in ("o-7", "o-8"):
        stored = await collection.find_one({"_id": oid})
        assert stored is not None and not stored["outbox_pending"] and "relay_lease_epoch" not in stored
