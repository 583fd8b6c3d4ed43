"""Composition root of the fulfillment service: fulfillment orders, routing and fulfillments."""

from __future__ import annotations

from fastapi import FastAPI

from services.fulfillment.api import build_router
from services.fulfillment.handlers import build_subscriptions
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings


class FulfillmentSettings(ServiceSettings):
    service_name: str = "fulfillment"
    http_port: int = 8003


def build(settings: FulfillmentSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or FulfillmentSettings()
    runtime = ServiceRuntime(
        settings,
        collections=["fulfillment_orders"],
        description="Fulfillment: fulfillment orders per location, routing, holds and fulfillments.",
    )
    fulfillment_orders = runtime.store("fulfillment_orders")
    runtime.subscribe(build_subscriptions(fulfillment_orders))
    return runtime, runtime.http_app(build_router(fulfillment_orders))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
