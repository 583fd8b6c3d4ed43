"""Composition root of the orders service: system of record for orders and their timeline."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from services.orders import store
from services.orders.api import build_router
from services.orders.application import Orders
from services.orders.handlers import build_subscriptions
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings

log = logging.getLogger(__name__)


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    http_port: Port = 8001


def bootstrap(runtime: ServiceRuntime) -> Orders:
    """The orders application over the runtime's store, the collection's indexes and the upgrade
    of earlier documents declared (the runtime creates and runs them at start)."""
    runtime.indexes(store.INDEXES)
    runtime.upgrade("orders", store.backfill_list_keys)
    return Orders(runtime.store("orders", mapping=store.MAPPING))


def build(settings: OrdersSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load_settings(OrdersSettings)
    runtime = ServiceRuntime(
        settings,
        collections=["orders"],
        description="Orders: placing, paying and cancelling orders; the order's fulfillment status and timeline.",
    )
    orders = bootstrap(runtime)
    runtime.subscribe(build_subscriptions(orders))
    return runtime, runtime.http_app(build_router(orders))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
