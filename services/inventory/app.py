"""Composition root of the inventory service: locations by priority, stock per location, and
the reservations fulfillment asks for."""

from __future__ import annotations

from fastapi import FastAPI

from services.inventory.api import build_router
from services.inventory.handlers import build_subscriptions
from services.inventory.operations import FaultPoints, Inventory
from services.inventory.store import StockStore
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings

COLLECTIONS = ["locations", "stock", "reservations", "order_cancellations"]


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
        stock=StockStore(runtime.database["stock"], runtime.relay.wake),
        reservations=runtime.store("reservations"),
        locations=runtime.store("locations"),
        cancellations=runtime.store("order_cancellations"),
        faults=FaultPoints(settings.fault_crash_at, settings.fault_marker),
    )
    runtime.subscribe(build_subscriptions(inventory))
    return runtime, runtime.http_app(build_router(inventory))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
