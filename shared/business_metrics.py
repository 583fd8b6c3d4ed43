"""Business metrics, kept out of the services' code: what the platform did, counted from the events
each service publishes (every event goes out through the outbox relay's one publish function), and
what stands now, as gauges a background task refreshes from the store with indexed queries. And
the default process and Python metrics, which a registry of our own does not have by itself.

Counters exist only in the service that owns their events' topic, so a sum over the pods is the
platform's figure. The gauges are the same on every replica of a service (they read the shared
store): aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from pymongo import IndexModel

from shared.catalog import (
    CATALOG,
    Contract,
    DisplayFulfillmentStatus,
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    HoldReason,
    NotificationOutcome,
    OrderCancelled,
    OrderFulfillmentStatusChanged,
)
from shared.clock import epoch, epoch_now, now_iso
from shared.events import CloudEvent
from shared.store import Collection, Database
from shared.text import FROM_THE_STORE
from shared.topics import TOPICS

log = logging.getLogger(__name__)

OPEN_STATUSES = ("OPEN", "SCHEDULED", "ON_HOLD", "IN_PROGRESS", "INCOMPLETE")
"""Fulfillment order statuses that still have work to do (CLOSED and CANCELLED only grow: not counted)."""

RUNNING = "RUNNING"
OUTBOX_SAMPLE = 100
"""Pending aggregates whose events are read for the oldest one's age: the relay's own probe order,
so the sample is what the relay reaches first; a larger backlog shows in the pending count."""

# The indexes the gauges' queries need (a service that does not declare one does not run them).
STATUS_LISTING = (("status", 1), ("sort_key", 1))
BULK_JOBS_BY_STATUS = (("status", 1), ("created_at", 1))
OUTBOX_PENDING = (("outbox_pending", 1),)

# How the routing explains a plan (services/fulfillment/domain/routing.py), by the start of its reason.
SPLIT_REASON = re.compile(r"no single active location can ship every line: split over (\d+) location")
PARTIAL_REASON = "no active location can ship every line"
LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def register_process_metrics(registry: CollectorRegistry) -> None:
    """process_* (CPU, memory, open files), python_info and python_gc_*: what the default registry
    exports and a service's own registry lacked."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def _label(value: Any, known: Sequence[str] = ()) -> str:
    """A label value that cannot blow up the series count: one of `known`, or a short token."""
    text = str(value) if value is not None else ""
    if known:
        return text if text in known else "OTHER"
    return text if LABEL_VALUE.match(text) else "other"


def routing_of(fulfillment_order: FulfillmentOrderSnapshot) -> str:
    """How the routing placed a new fulfillment order: single, split, partial (some lines could not
    be placed), out_of_stock (the held remainder) or digital."""
    if not fulfillment_order.location_id:
        held = any(hold.reason == HoldReason.INVENTORY_OUT_OF_STOCK for hold in fulfillment_order.holds)
        return "out_of_stock" if held else "digital"
    if SPLIT_REASON.match(fulfillment_order.routing_reason):
        return "split"
    return "partial" if fulfillment_order.routing_reason.startswith(PARTIAL_REASON) else "single"


C = TypeVar("C", bound=Contract)


class EventCounts:
    """Counters of what the events a service publishes say happened, each read as its type's
    payload (shared.catalog)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        owned = {topic.name for topic in TOPICS if topic.owner == service}
        self._on: dict[str, Callable[[CloudEvent], None]] = {}

        def owns(event_type: str) -> bool:
            return CATALOG[event_type].topic.name in owned

        if owns("order.paid"):
            paid = Counter("orders_paid", "Orders paid (order.paid).", registry=registry)
            cancelled = Counter(
                "orders_cancelled", "Orders cancelled (order.cancelled), by refund.", ["refund"], registry=registry
            )
            fulfilled = Counter(
                "orders_fulfilled",
                "Orders whose fulfillment status became FULFILLED (order.fulfillment_status_changed).",
                registry=registry,
            )
            self._on["order.paid"] = lambda _: paid.inc()
            self._count("order.cancelled", OrderCancelled, lambda order: cancelled.labels(order.refund).inc())

            def status_changed(changed: OrderFulfillmentStatusChanged) -> None:
                if changed.fulfillment_status == DisplayFulfillmentStatus.FULFILLED:
                    fulfilled.inc()

            self._count("order.fulfillment_status_changed", OrderFulfillmentStatusChanged, status_changed)
        if owns("fulfillment_order.created"):
            self._fulfillment_counters(registry)
        if owns("inventory.reserved"):
            reservations = Counter(
                "inventory_reservations",
                "Reservations asked of inventory, by outcome: reserved, or failed (inventory.reservation_failed).",
                ["outcome"],
                registry=registry,
            )
            self._on["inventory.reserved"] = lambda _: reservations.labels("reserved").inc()
            self._on["inventory.reservation_failed"] = lambda _: reservations.labels("failed").inc()
        if owns("notification.sent"):
            emails = Counter(
                "emails",
                "Emails by type and final outcome: sent, or failed after its retries (notification.sent/failed).",
                ["type", "outcome"],
                registry=registry,
            )

            def email(outcome: str) -> Callable[[NotificationOutcome], None]:
                return lambda sent: emails.labels(_label(sent.notification.type), outcome).inc()

            self._count("notification.sent", NotificationOutcome, email("sent"))
            self._count("notification.failed", NotificationOutcome, email("failed"))

    def _count(self, event_type: str, payload: type[C], count: Callable[[C], None]) -> None:
        self._on[event_type] = lambda event: count(payload.model_validate(event.data, context=FROM_THE_STORE))

    def _fulfillment_counters(self, registry: CollectorRegistry) -> None:
        reasons = [reason.value for reason in HoldReason]
        routed = Counter(
            "fulfillment_orders_routed",
            "Fulfillment orders created, by how the routing placed them: single, split, partial, "
            "out_of_stock, digital.",
            ["routing"],
            registry=registry,
        )
        splits = Counter(
            "order_routing_splits",
            "Routings that split an order over several locations (each of the n fulfillment orders adds 1/n).",
            registry=registry,
        )
        holds = Counter("fulfillment_holds_placed", "Holds placed, by reason.", ["reason"], registry=registry)
        shipped = Counter("fulfillments_created", "Fulfillments (shipments) created.", registry=registry)

        def created(changed: FulfillmentOrderChanged) -> None:
            fo = changed.fulfillment_order
            routed.labels(routing_of(fo)).inc()
            split = SPLIT_REASON.match(fo.routing_reason) if fo.location_id else None
            if split and int(split.group(1)) > 0:
                splits.inc(1 / int(split.group(1)))
            for hold in fo.holds:
                holds.labels(_label(hold.reason.value, reasons)).inc()

        def placed_on_hold(changed: FulfillmentOrderChanged) -> None:
            if changed.fulfillment_order.holds:  # a hold is added last
                holds.labels(_label(changed.fulfillment_order.holds[-1].reason.value, reasons)).inc()

        self._count("fulfillment_order.created", FulfillmentOrderChanged, created)
        self._count("fulfillment_order.placed_on_hold", FulfillmentOrderChanged, placed_on_hold)
        self._on["fulfillment.created"] = lambda _: shipped.inc()

    def observe(self, event: CloudEvent) -> None:
        """Count a published event. Never raises: a metric must not hold back the relay."""
        count = self._on.get(event.type)
        if count is None:
            return
        try:
            count(event)
        except Exception:
            log.warning("could not count %s %s for the business metrics", event.type, event.id, exc_info=True)


def _declares(indexes: Mapping[str, Sequence[IndexModel]], collection: str, keys: tuple[tuple[str, int], ...]) -> bool:
    return any(tuple(model.document["key"].items()) == keys for model in indexes.get(collection, ()))


async def _count(collection: Collection, match: Mapping[str, object]) -> int:
    """A count as `$match` + `$count` (answered from an index on both stores; never count_documents)."""
    counted = await (await collection.aggregate([{"$match": match}, {"$count": "n"}])).to_list()
    return int(counted[0]["n"]) if counted else 0


class StoreGauges:
    """What stands now, read from the store: open fulfillment orders by status and those past their
    fulfill-by, running bulk jobs and the oldest one's age, the outbox backlog per collection."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge(
            "fulfillment_orders_open", "Fulfillment orders by open status.", ["status"], registry=registry
        )
        self.past_fulfill_by = Gauge(
            "fulfillment_orders_past_fulfill_by",
            "Open fulfillment orders whose fulfill-by deadline has passed, by status.",
            ["status"],
            registry=registry,
        )
        self.bulk_running = Gauge("bulk_jobs_running", "Bulk jobs running.", registry=registry)
        self.bulk_oldest = Gauge(
            "bulk_job_oldest_running_age_seconds", "Age of the oldest running bulk job (0: none).", registry=registry
        )
        self.outbox_pending = Gauge(
            "outbox_pending_aggregates",
            "Aggregates with events not yet relayed to Kafka, by collection.",
            ["collection"],
            registry=registry,
        )
        self.outbox_oldest = Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest event waiting in the outbox, by collection (0: none).",
            ["collection"],
            registry=registry,
        )
        self.refreshed = Gauge(
            "business_gauges_refreshed_timestamp_seconds",
            "When the store gauges were last refreshed (Unix time): stale when the store is unreachable.",
            registry=registry,
        )

    async def refresh(
        self,
        database: Database,
        indexes: Mapping[str, Sequence[IndexModel]],
        outboxes: Sequence[Collection],
    ) -> None:
        """One refresh; each query only where the service declares the index that answers it."""
        now = now_iso()
        if _declares(indexes, "fulfillment_orders", STATUS_LISTING):
            fulfillment_orders = database["fulfillment_orders"]
            for status in OPEN_STATUSES:
                self.open.labels(status).set(await _count(fulfillment_orders, {"status": {"$eq": status}}))
                # sort_key starts with "k" and the fulfill-by time (none: the far future): a range on it.
                past = {"status": {"$eq": status}, "sort_key": {"$lt": f"k{now}"}}
                self.past_fulfill_by.labels(status).set(await _count(fulfillment_orders, past))
        if _declares(indexes, "bulk_jobs", BULK_JOBS_BY_STATUS):
            jobs = database["bulk_jobs"]
            running = {"status": {"$eq": RUNNING}}
            self.bulk_running.set(await _count(jobs, running))
            oldest = await jobs.find(
                running, {"created_at": 1}, sort=[("created_at", 1), ("_id", 1)], limit=1
            ).to_list()
            self.bulk_oldest.set(max(0.0, epoch_now() - epoch(oldest[0]["created_at"])) if oldest else 0.0)
        for collection in outboxes:
            pending = {"outbox_pending": {"$eq": True}}
            self.outbox_pending.labels(collection.name).set(await _count(collection, pending))
            sample = await collection.find(pending, {"outbox": 1}, limit=OUTBOX_SAMPLE).to_list()
            times = [
                epoch(entry["event"]["time"])
                for doc in sample
                for entry in doc.get("outbox", {}).values()
                if isinstance(entry, dict) and "time" in entry.get("event", {})
            ]
            self.outbox_oldest.labels(collection.name).set(max(0.0, epoch_now() - min(times)) if times else 0.0)
        self.refreshed.set(epoch_now())

    async def refresh_forever(
        self,
        database: Database,
        indexes: Mapping[str, Sequence[IndexModel]],
        outboxes: Sequence[Collection],
        every_seconds: float,
    ) -> None:
        """Refresh now and then every `every_seconds`; a failed refresh keeps the last values (the
        refreshed timestamp says how old they are) and is tried again at the next turn."""
        while True:
            try:
                await self.refresh(database, indexes, outboxes)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("refreshing the business gauges failed; trying again in %ss", every_seconds, exc_info=True)
            await asyncio.sleep(every_seconds)


class BusinessMetrics:
    """The service's business metrics: event counts, store gauges and the process collectors."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        register_process_metrics(registry)
        self.events = EventCounts(registry, service)
        self.gauges = StoreGauges(registry)

    def observe(self, event: CloudEvent) -> None:
        self.events.observe(event)
