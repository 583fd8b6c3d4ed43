"""The orders service's use cases, what its routes and event handlers call: each loads an order,
applies a rule of the domain and saves the order with the events it emits (one write), or reads
orders for the listing. No HTTP, no Kafka: services/orders/api.py and handlers.py translate.

Events from other services are idempotent by event id (the store's inbox). Those that need
nothing from the order (inventory's, notifications', a fulfillment-order snapshot the order holds
already) are written as timeline notes: one write, no read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.orders import domain, listing, store
from services.orders.domain import CancelReason, NewOrder, Order, Refund
from shared.aggregates import Change
from shared.catalog import (
    Contract,
    DisplayFulfillmentStatus,
    FinancialStatus,
    FulfillmentChanged,
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    FulfillmentRequestChanged,
)
from shared.clock import now_iso
from shared.events import CloudEvent
from shared.store import AggregateStore

FulfillmentOrderNews = FulfillmentOrderChanged | FulfillmentChanged | FulfillmentRequestChanged
"""What the fulfillment events that carry a fulfillment order carry (services/orders/handlers.py;
checked against the catalog when its handler is registered)."""


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

    def __init__(self, orders: AggregateStore[Order]) -> None:
        self.store = orders
        self.written = WrittenSnapshots()

    # --- merchants ----------------------------------------------------------------------------

    async def get(self, order_id: str) -> Order:
        order = await self.store.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        return order

    async def place(self, request: NewOrder, order_id: str) -> Order:
        """Place an order in one insert; a retry of a keyed request that crashed after this write
        finds the order it created."""
        placed = domain.place(request, now_iso(), order_id)
        return await self.store.create(order_id, placed) or await self.get(order_id)

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
        self,
        *,
        financial_status: FinancialStatus | None,
        fulfillment_status: DisplayFulfillmentStatus | None,
        sort: listing.OrderSort,
        after: str | None,
        offset: int,
        limit: int,
    ) -> OrderPage:
        """A page of orders (listing.InvalidCursor for an `after` this service did not make)."""
        page = listing.page(listing.filters(financial_status, fulfillment_status), sort, after)
        found = await self.store.find(page.query, sort=page.sort, skip=offset, limit=limit + 1)
        total = None
        if after is None:
            # Not count_documents: the embedded store runs its $group in Python over every order.
            counted = await (await self.store.collection.aggregate([{"$match": page.query}, {"$count": "n"}])).to_list()
            total = counted[0]["n"] if counted else 0
        return OrderPage(found[:limit], total, listing.next_cursor(sort, found, limit))

    async def _change(
        self, order_id: str, rule: Callable[[Order], Change[Order] | None], once: str | None = None
    ) -> Order:
        """Apply a rule to an existing order (at most once per `once`, kept in its inbox): the order
        as it is after it (unchanged when the rule had nothing to do, or was applied already)."""
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


def _unknown(event: CloudEvent, order_id: str) -> UnknownOrder:
    return UnknownOrder(order_id, f"{event.type} {event.id} is about an order that does not exist")
