"""Composition root of the inventory service: locations and stock per location."""

from __future__ import annotations

from fastapi import FastAPI

from services.inventory.api import build_router
from services.inventory.handlers import build_subscriptions
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    http_port: int = 8002


def build(settings: InventorySettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or InventorySettings()
    runtime = ServiceRuntime(
        settings,
        collections=["reservations"],
        description="Inventory: locations by priority, stock per location, reservations.",
    )
    reservations = runtime.store("reservations")
    runtime.subscribe(build_subscriptions(reservations))
    return runtime, runtime.http_app(build_router(reservations))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
