"""Composition root of the inventory service: locations by priority, stock per location, and
the reservations fulfillment asks for."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.inventory.api import build_router
from services.inventory.handlers import build_subscriptions
from services.inventory.operations import FaultPoints, Inventory
from services.inventory.store import INDEXES, StockStore
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings

# The collections whose documents have an outbox (the relay watches them). Orders' cancellation
# notes live in "reservations" beside their fulfillment orders' records.
COLLECTIONS = ["locations", "stock", "reservations"]


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    http_port: Port = 8002
    # Test-only crash points (see operations.FaultPoints); unset in production.
    fault_crash_at: str | None = None
    fault_marker: str | None = None


def build(settings: InventorySettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load_settings(InventorySettings)
    runtime = ServiceRuntime(
        settings,
        collections=COLLECTIONS,
        description="Inventory: locations by priority, stock per location, reservations for fulfillment orders.",
    )
    inventory = Inventory(
        stock=StockStore(
            runtime.database["stock"],
            runtime.relay.wake,
            timedelta(seconds=settings.inbox_retention_seconds),
        ),
        reservations=runtime.store("reservations"),
        locations=runtime.store("locations"),
        faults=FaultPoints(settings.fault_crash_at, settings.fault_marker),
    )
    runtime.indexes(INDEXES)
    runtime.subscribe(build_subscriptions(inventory))
    return runtime, runtime.http_app(build_router(inventory))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
