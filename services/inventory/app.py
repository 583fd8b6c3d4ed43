"""Composition root of the inventory service: locations by priority, stock per location, and
the reservations fulfillment asks for."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.inventory.api import build_router
from services.inventory.application import FaultPoints, Inventory
from services.inventory.application.locations import Locations
from services.inventory.handlers import build_subscriptions
from services.inventory.mapping import DIRECTORY, NOTES, RECORDS
from services.inventory.store import INDEXES, ReservationStore, StockStore
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings
from shared.store import AggregateStore, Database, WakeRelay

# The collections whose documents have an outbox (the relay watches them). Orders' cancellation
# notes live in "reservations" beside their fulfillment orders' records.
COLLECTIONS = ["locations", "stock", "reservations"]


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    http_port: Port = 8002
    # Test-only crash points (see application.FaultPoints); unset in production.
    fault_crash_at: str | None = None
    fault_marker: str | None = None


def bootstrap(
    database: Database,
    wake_relay: WakeRelay,
    retention: timedelta = timedelta(days=7),
    faults: FaultPoints | None = None,
) -> Inventory:
    """Inventory's application object over its database: what `build` serves, and what tests and
    benchmarks drive without HTTP or Kafka. `retention` is the broker's redelivery horizon (how
    long inboxes and a stock's marks are kept); `wake_relay` is told of every write with events."""
    reservations = database["reservations"]
    return Inventory(
        stock=StockStore(database["stock"], wake_relay, retention),
        reservations=ReservationStore(
            AggregateStore(reservations, wake_relay, retention, mapping=RECORDS),
            AggregateStore(reservations, wake_relay, retention, mapping=NOTES),
        ),
        locations=Locations(AggregateStore(database["locations"], wake_relay, retention, mapping=DIRECTORY)),
        faults=faults,
    )


def build(settings: InventorySettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load_settings(InventorySettings)
    runtime = ServiceRuntime(
        settings,
        collections=COLLECTIONS,
        description="Inventory: locations by priority, stock per location, reservations for fulfillment orders.",
    )
    inventory = bootstrap(
        runtime.database,
        runtime.relay.wake,
        timedelta(seconds=settings.inbox_retention_seconds),
        FaultPoints(settings.fault_crash_at, settings.fault_marker),
    )
    runtime.indexes(INDEXES)
    runtime.subscribe(build_subscriptions(inventory))
    return runtime, runtime.http_app(build_router(inventory))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
