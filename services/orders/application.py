"""The orders service's use cases, what its routes and event handlers call: each loads an order,
applies a rule of the domain and saves the order with the events it emits (one write), or reads
orders for the listing. No HTTP, no Kafka: services/orders/api.py and handlers.py translate.

Events from other services are idempotent by event id (the store's inbox). Those that need
nothing from the order (inventory's, notifications', a fulfillment-order snapshot the order holds
already) are written as timeline notes: one write, no read.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.orders import domain, listing, search, store
from services.orders.custom_statuses import Statuses
from services.orders.domain import CancelReason, Comment, NewOrder, Order, OrderEdit, Refund
from services.orders.numbering import Sequencer
from shared.aggregates import Change
from shared.catalog import (
    Contract,
    FulfillmentChanged,
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    FulfillmentRequestChanged,
)
from shared.clock import now_iso
from shared.events import CloudEvent
from shared.store import AggregateStore, Filter

FulfillmentOrderNews = FulfillmentOrderChanged | FulfillmentChanged | FulfillmentRequestChanged
"""What the fulfillment events that carry a fulfillment order carry (services/orders/handlers.py;
checked against the catalog when its handler is registered)."""


Candidates = list[tuple[str, Order | None]]
"""Orders a search reads, each with its sort key (None: a term whose order is gone)."""

SEARCH_BATCH = 200
SEARCH_BUDGET = 2_000
"""The most orders one search request reads (a page may come back short, with a cursor)."""


class UnknownOrder(LookupError):
    """An order this service never saw. About an event: not retriable, so it is dead-lettered."""

    def __init__(self, order_id: str, message: str | None = None) -> None:
        super().__init__(message or f"order {order_id!r} does not exist")
        self.order_id = order_id


@dataclass(frozen=True)
class OrderPage:
    """One page of the listing; `total` only on a first page, `next_cursor` None on the last."""

    items: list[Order]
    total: int | None
    next_cursor: str | None


class WrittenSnapshots:
    """The fulfillment-order snapshots this process last wrote onto orders (a bounded memo).

    An event carrying one of them again changes nothing on the order but its timeline
    (fulfillment.created and the fulfillment_order.closed that follows it carry the same
    snapshot): the order holds that snapshot or a newer one (domain.record_fulfillment_order
    never replaces a newer one with an older), so its status and deadline stay as they are.
    Such an event is then a timeline note, one write without a read. Forgetting costs only
    the read: after a restart, or for an order whose events another replica handled.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._digests: OrderedDict[tuple[str, str], str] = OrderedDict()

    def remember(self, order: Order) -> None:
        for fo_id, snapshot in order.fulfillment_orders.items():
            self._digests[order.id, fo_id] = domain.snapshot_digest(snapshot)
            self._digests.move_to_end((order.id, fo_id))
        while len(self._digests) > self.size:
            self._digests.popitem(last=False)

    def holds(self, order_id: str, incoming: FulfillmentOrderSnapshot | None) -> bool:
        if incoming is None:
            return True  # no snapshot at all: the event only goes on the timeline
        return self._digests.get((order_id, incoming.id)) == domain.snapshot_digest(incoming)


class Orders:
    """The orders of one store, and what can be done with them."""

    def __init__(
        self, orders: AggregateStore[Order], numbers: Sequencer, terms: search.Terms, statuses: Statuses
    ) -> None:
        self.store = orders
        self.numbers = numbers
        self.terms = terms
        self.statuses = statuses
        self.written = WrittenSnapshots()

    # --- merchants ----------------------------------------------------------------------------

    async def get(self, order_id: str) -> Order:
        order = await self.store.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        return order

    async def place(self, request: NewOrder, order_id: str) -> Order:
        """Place an order in one insert, then number it (numbering.Sequencer), which makes it
        searchable (all its terms at once) and announces it, from the document just stored; a retry
        of a keyed request that crashed in between finds the order it created and numbers it."""
        stored = await self.store.insert(order_id, domain.place(request, now_iso(), order_id))
        return await self.numbers.number(order_id, stored)

    async def pay(self, order_id: str) -> Order:
        return await self._change(order_id, lambda order: domain.pay(order, now_iso()))

    async def cancel(
        self,
        order_id: str,
        *,
        refund: Refund,
        restock: bool,
        notify_customer: bool,
        reason: CancelReason,
        bulk_job_id: str | None = None,
        once: str | None = None,
    ) -> Order:
        """Cancel the order; at most once per `once` where given (a bulk job resumed after a crash).
        `bulk_job_id`: the bulk job doing it, if one is (its timeline says so)."""

        def rule(order: Order) -> Change[Order]:
            return domain.cancel(order, refund=refund, restock=restock, notify_customer=notify_customer,
                                 reason=reason, now=now_iso(), bulk_job_id=bulk_job_id)  # fmt: skip

        return await self._change(order_id, rule, once)

    async def complete_post_purchase(self, order_id: str) -> Order:
        return await self._change(order_id, lambda order: domain.complete_post_purchase(order, now_iso()))

    async def list(
        self, wanted: listing.OrderFilters, *, sort: listing.OrderSort, after: str | None, offset: int, limit: int
    ) -> OrderPage:
        """A page of orders (listing.InvalidCursor for an `after` this service did not make,
        listing.Unsupported for a search no index answers)."""
        plan = listing.plan(wanted, sort, after)
        if not plan.exact:
            if offset:
                raise listing.Unsupported("query.offset", "this search pages with after (next_cursor), not offset")
            return await self._search(wanted, plan, sort, limit)
        found = await self.store.find(plan.query, sort=plan.sort, skip=offset, limit=limit + 1)
        total = None
        if after is None:
            # Not count_documents: the embedded store runs its $group in Python over every order.
            counted = await (await self.store.collection.aggregate([{"$match": plan.query}, {"$count": "n"}])).to_list()
            total = counted[0]["n"] if counted else 0
        return OrderPage(found[:limit], total, listing.next_cursor(sort, found, limit))

    async def _search(self, wanted: listing.OrderFilters, plan: listing.Plan, sort: str, limit: int) -> OrderPage:
        """Walk the plan's index in batches, keeping the orders that match every filter, until the
        page is full or SEARCH_BUDGET orders were read: then the page may be short, and its
        cursor goes on from the last order read (each request costs at most the budget)."""
        found: list[Order] = []
        bounds = dict(plan.bounds)
        examined, last_key, exhausted = 0, None, False
        direction = plan.sort[0][1]
        while len(found) <= limit and examined < SEARCH_BUDGET:
            batch = min(SEARCH_BATCH, SEARCH_BUDGET - examined)
            candidates = await self._candidates(plan, bounds, batch)
            for key, order in candidates:
                examined += 1
                last_key = key
                if order is not None and listing.matches(order, wanted):
                    found.append(order)
                    if len(found) > limit:
                        break
            if len(candidates) < batch:
                exhausted = True
                break
            if last_key is not None:
                bounds["$gt" if direction == 1 else "$lt"] = last_key
        if len(found) > limit:
            return OrderPage(found[:limit], None, listing.next_cursor(sort, found, limit))
        more = not exhausted and last_key is not None
        return OrderPage(found, None, listing.encode_cursor(sort, last_key) if more and last_key else None)

    async def _candidates(self, plan: listing.Plan, bounds: Filter, batch: int) -> Candidates:
        """The next `batch` orders of the plan's index after `bounds`, each with its sort key (None
        for a term whose order is gone)."""
        if plan.term is None:
            query = {name: value for name, value in plan.query.items() if name != plan.key}
            if bounds:
                query[plan.key] = bounds
            orders = await self.store.find(query, sort=plan.sort, limit=batch)
            return [(store.list_key(order, plan.key), order) for order in orders]
        holding = await self.terms.page(plan.term, bounds, plan.sort[0][1], batch)
        loaded = {o.id: o for o in await self.store.find({"_id": {"$in": [order_id for order_id, _ in holding]}})}
        return [(key, loaded.get(order_id)) for order_id, key in holding]

    # --- the warehouse's day ------------------------------------------------------------------

    async def set_waiting(self, order_id: str, waiting: bool) -> Order:
        return await self._change(order_id, lambda order: domain.set_waiting(order, waiting, now_iso()))

    async def comment(self, order_id: str, text: str, author: str | None) -> Order:
        """A merchant's comment; its words are searchable (indexed before the order is written)."""
        order = await self.get(order_id)
        await self.terms.add(order_id, order.created_at, search.tokens(text)[: search.MAX_TERMS])
        note = Comment(id=str(uuid.uuid4()), text=text, at=now_iso(), author=author)
        return await self._change(order_id, lambda order: domain.add_comment(order, note))

    async def set_custom_status(self, order_id: str, code: str | None) -> Order:
        if code is not None:
            await self.statuses.require(code)
        return await self._change(order_id, lambda order: domain.set_custom_status(order, code, now_iso()))

    async def edit(self, order_id: str, change: OrderEdit) -> Order:
        """Edit lines, address and/or customer; the skus and customer it adds are searchable before
        it is written, what it drops stops being so after."""
        before = await self.get(order_id)
        added = set[str]()
        if change.line_items is not None:
            added |= set(search.tokens(" ".join(line.sku for line in change.line_items)))
        if change.customer is not None:
            added |= search.customer_terms(change.customer)
        if added:
            await self.terms.add(order_id, before.created_at, sorted(added))
        edited = await self._change(order_id, lambda order: domain.edit(order, change, now_iso()))
        await self.terms.remove(order_id, search.terms_of(before) - search.terms_of(edited))
        return edited

    async def _change(
        self, order_id: str, rule: Callable[[Order], Change[Order] | None], once: str | None = None
    ) -> Order:
        """Apply a rule to an existing order (at most once per `once`, kept in its inbox): the order
        as it is after it (unchanged when the rule had nothing to do, or was applied already). An
        order not numbered yet (its placing did not finish) is numbered first, so that it is
        announced before anything else is said of it."""

        def numbered_first(order: Order) -> Change[Order] | None:
            if order.number is None:
                raise _NotNumbered
            return rule(order)

        try:
            saved = await self.store.apply(order_id, numbered_first, event_id=once, missing=UnknownOrder(order_id))
        except _NotNumbered:
            await self.numbers.number(order_id)
            saved = await self.store.apply(order_id, rule, event_id=once, missing=UnknownOrder(order_id))
        return saved or await self.get(order_id)

    # --- other services' events ---------------------------------------------------------------

    async def record_fulfillment_order(self, event: CloudEvent, news: FulfillmentOrderNews) -> None:
        """What fulfillment says of one of the order's fulfillment orders."""
        incoming = news.fulfillment_order

        def rule(order: Order) -> Change[Order]:
            return domain.record_fulfillment_order(order, event, incoming, now_iso(), news)

        if self.written.holds(incoming.order_id, incoming):
            await self._note(incoming.order_id, event, news, rule)
            return
        saved = await self.store.apply(
            incoming.order_id, rule, event_id=event.id, missing=_unknown(event, incoming.order_id)
        )
        if saved is not None:
            self.written.remember(saved)

    async def record_on_timeline(self, order_id: str, event: CloudEvent, news: Contract | None = None) -> None:
        """An event about the order that changes nothing on it but its timeline (`news`: its data)."""

        def rule(order: Order) -> Change[Order]:
            return domain.record_on_timeline(order, event, now_iso(), news)

        await self._note(order_id, event, news, rule)

    async def _note(
        self, order_id: str, event: CloudEvent, news: Contract | None, rule: Callable[[Order], Change[Order]]
    ) -> None:
        """Put the event on the order's timeline as a note: it needs nothing from the order, so one
        write and no read (`Order.timeline_notes`). An event id that cannot be a field name takes
        the long way through `rule`, which gives the same result."""
        note = store.note(domain.timeline_entry(event, now_iso(), news))
        try:
            recorded = await self.store.set_fields(order_id, note, event_id=event.id)
        except ValueError:
            await self.store.apply(order_id, rule, event_id=event.id, missing=_unknown(event, order_id))
            return
        if recorded is None:
            raise _unknown(event, order_id)


class _NotNumbered(Exception):
    """The order is not numbered yet (services/orders/numbering.py)."""


def _unknown(event: CloudEvent, order_id: str) -> UnknownOrder:
    return UnknownOrder(order_id, f"{event.type} {event.id} is about an order that does not exist")
