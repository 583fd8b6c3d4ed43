"""What the orders service does with other services' events: keep the order's fulfillment
status and timeline. Each handler is idempotent by event id (the store's inbox)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from services.orders import domain
from shared.catalog import (
    CATALOG,
    FulfillmentChanged,
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    FulfillmentRequestChanged,
    InventoryReservation,
    InventoryReservationFailed,
    NotificationOutcome,
)
from shared.clock import now_iso
from shared.events import CloudEvent
from shared.messaging import EventSubscriptions
from shared.store import AggregateStore, Change, Document
from shared.topics import FULFILLMENT_EVENTS

# Every fulfillment event that carries the fulfillment order as it is now (fulfillment_order.*,
# fulfillment.*, fulfillment_request.*, ...): taken from the catalog so that none is missed.
FULFILLMENT_ORDER_EVENTS = sorted(
    event_type
    for event_type, spec in CATALOG.items()
    if spec.topic == FULFILLMENT_EVENTS and "fulfillment_order" in spec.model.model_fields
)

FulfillmentOrderNews = FulfillmentOrderChanged | FulfillmentChanged | FulfillmentRequestChanged
"""What the FULFILLMENT_ORDER_EVENTS carry (checked against the catalog when the handler is registered)."""

TIMELINE_ONLY_EVENTS = [
    "inventory.reserved",
    "inventory.reservation_failed",
    "inventory.released",
    "inventory.committed",
    "inventory.restocked",
    "notification.sent",
    "notification.failed",
]
TimelineNews = InventoryReservation | InventoryReservationFailed | NotificationOutcome


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

    def remember(self, order: Document) -> None:
        for fo_id, snapshot in order.get("fulfillment_orders", {}).items():
            self._digests[order["id"], fo_id] = domain.snapshot_digest(snapshot)
            self._digests.move_to_end((order["id"], fo_id))
        while len(self._digests) > self.size:
            self._digests.popitem(last=False)

    def holds(self, order_id: str, event: CloudEvent, incoming: FulfillmentOrderSnapshot | None = None) -> bool:
        snapshot = domain.incoming_snapshot(event, incoming)
        if snapshot is None:
            return True  # no snapshot at all: the event only goes on the timeline
        return self._digests.get((order_id, snapshot["id"])) == domain.snapshot_digest(snapshot)


def build_subscriptions(orders: AggregateStore) -> EventSubscriptions:
    subscriptions = EventSubscriptions()
    written = WrittenSnapshots()

    @subscriptions.on(*FULFILLMENT_ORDER_EVENTS)
    async def on_fulfillment_order_changed(event: CloudEvent, changed: FulfillmentOrderNews) -> None:
        order_id = _order_id(event)
        incoming = changed.fulfillment_order
        if written.holds(order_id, event, incoming):
            await _note(orders, order_id, event, domain.record_fulfillment_order)
            return
        saved = await orders.apply(
            order_id, lambda order: domain.record_fulfillment_order(order, event, now_iso(), incoming),
            event_id=event.id, missing=_unknown(event),
        )  # fmt: skip
        if saved is not None:
            written.remember(saved)

    @subscriptions.on(*TIMELINE_ONLY_EVENTS)
    async def on_related_event(event: CloudEvent, _: TimelineNews) -> None:
        await _note(orders, _order_id(event), event, domain.record_on_timeline)

    return subscriptions


Rule = Callable[[Document, CloudEvent, str], Change]


async def _note(orders: AggregateStore, order_id: str, event: CloudEvent, rule: Rule) -> None:
    """Put the event on the order's timeline as a note: it needs nothing from the order, so one
    write and no read (domain.TIMELINE_NOTES). An event id that cannot be a field name takes
    the long way through `rule`, which gives the same result."""
    note = {f"{domain.TIMELINE_NOTES}.{event.id}": domain.timeline_entry(event, now_iso())}
    try:
        recorded = await orders.set_fields(order_id, note, event_id=event.id)
    except ValueError:
        await orders.apply(
            order_id, lambda order: rule(order, event, now_iso()), event_id=event.id, missing=_unknown(event)
        )
        return
    if recorded is None:
        raise _unknown(event)


class UnknownOrder(LookupError):
    """An event about an order this service never saw: not retriable, so it is dead-lettered."""


def _order_id(event: CloudEvent) -> str:
    data = event.data
    if "order_id" in data:
        return str(data["order_id"])
    for key in ("fulfillment_order", "notification"):
        if key in data and "order_id" in data[key]:
            return str(data[key]["order_id"])
    return event.subject


def _unknown(event: CloudEvent) -> UnknownOrder:
    return UnknownOrder(f"{event.type} {event.id} is about an order that does not exist")
