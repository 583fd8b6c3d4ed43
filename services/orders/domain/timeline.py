"""The order's timeline: everything that touched the order, its own events included, each in the
same write that records the change (shown newest first by the API)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from services.orders.domain.model import SOURCE, Order, TimelineEntry, snapshot
from services.orders.domain.narration import narrate
from shared.aggregates import Change
from shared.catalog import Contract, OrderCreated, OrderPaid, OrderPostPurchaseCompleted
from shared.events import CloudEvent, new_event


def timeline_entry(event: CloudEvent, now: str, data: Contract | None = None) -> TimelineEntry:
    """The event as the order's timeline keeps it: what, when, who, and what it says (`data`: the
    event's data as its catalog model when the caller has it, else read from the event)."""
    told = narrate(event, data)
    return TimelineEntry(at=event.time.isoformat(), recorded_at=now, type=event.type, source=event.producer,
                         event_id=event.id, actor=event.actor, message=told.message,
                         details=told.details)  # fmt: skip


def timeline(order: Order) -> list[TimelineEntry]:
    """The order's timeline, oldest first: the entries written with the order and the notes
    added apart from it since (`Order.timeline_notes`), in the order they were recorded."""
    if not order.timeline_notes:
        return list(order.timeline)
    return sorted([*order.timeline, *order.timeline_notes.values()], key=lambda entry: entry.recorded_at or "")


def record_on_timeline(order: Order, event: CloudEvent, now: str, data: Contract | None = None) -> Change[Order]:
    """Anything that touched the order goes on its timeline."""
    return Change(with_timeline(order, [timeline_entry(event, now, data)]))


def with_timeline(order: Order, entries: Iterable[TimelineEntry]) -> Order:
    """The order with `entries` at the end of its timeline, its notes folded in."""
    return replace(order, timeline=(*timeline(order), *entries), timeline_notes={})


Announcement = tuple[str, Contract]
"""One of the order's own events before it is made: its type and its data."""


def emit(order: Order, announcements: Sequence[Announcement], now: str) -> Change[Order]:
    """The order's own events go on its timeline in the same write that emits them (told from
    the data in hand: not read back from the events)."""
    events = [new_event(SOURCE, event_type, order.id, data) for event_type, data in announcements]
    entries = [timeline_entry(event, now, data) for event, (_, data) in zip(events, announcements, strict=True)]
    return Change(with_timeline(order, entries), events)


ANNOUNCEMENTS: dict[str, type[OrderCreated | OrderPaid | OrderPostPurchaseCompleted]] = {
    "order.created": OrderCreated,
    "order.paid": OrderPaid,
    "order.post_purchase_completed": OrderPostPurchaseCompleted,
}
"""The events that carry nothing but the order as it is now."""


def announce(event_type: str, order: Order) -> Announcement:
    return event_type, ANNOUNCEMENTS[event_type](order=snapshot(order))
