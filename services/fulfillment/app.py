"""Composition root of the fulfillment service: fulfillment orders, routing and fulfillments."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI

from services.fulfillment import upgrade
from services.fulfillment.api import build_bulk_router, build_router
from services.fulfillment.bulk import BulkJobs
from services.fulfillment.handlers import build_subscriptions
from services.fulfillment.service import Fulfillment
from services.fulfillment.store import (
    CACHE_SECONDS,
    INDEXES,
    LocationDirectory,
    PostPurchaseHold,
    SettingsStore,
    ShopSettings,
    StockView,
    SweepInterval,
)
from services.fulfillment.sweep import Sweeper
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings, seconds


class FulfillmentSettings(ServiceSettings):
    service_name: str = "fulfillment"
    http_port: Port = 8003
    # Defaults of the shop settings until `PUT /settings` changes them (same bounds as there).
    auto_fulfill: bool = False
    sweep_interval_seconds: SweepInterval = 30.0
    post_purchase_hold_seconds: PostPurchaseHold = 3600.0
    # How long a replica's claim on a bulk job lasts without progress before another takes it over.
    bulk_job_lease_seconds: Annotated[float, seconds(1, 3_600)] = 30.0
    # How long a replica serves the shop settings and the locations from memory (see store.CACHE_SECONDS).
    config_cache_seconds: Annotated[float, seconds(0, 300)] = CACHE_SECONDS


def build(settings: FulfillmentSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load_settings(FulfillmentSettings)
    runtime = ServiceRuntime(
        settings,
        collections=["fulfillment_orders"],
        description="Fulfillment: fulfillment orders per location, routing, holds and fulfillments.",
    )
    defaults = ShopSettings(
        auto_fulfill=settings.auto_fulfill,
        sweep_interval_seconds=settings.sweep_interval_seconds,
        post_purchase_hold_seconds=settings.post_purchase_hold_seconds,
    )
    runtime.indexes(INDEXES)
    fulfillment = Fulfillment(
        fulfillment_orders=runtime.store("fulfillment_orders"),
        routings=runtime.store("routings"),
        stock=StockView(runtime.store("stock_view")),
        locations=LocationDirectory(runtime.store("locations"), settings.config_cache_seconds),
        settings=SettingsStore(runtime.store("settings"), defaults, settings.config_cache_seconds),
    )
    runtime.upgrade("fulfillment", upgrade.upgrade)
    runtime.subscribe(build_subscriptions(fulfillment, runtime.authenticator))
    runtime.background("sweep", Sweeper(fulfillment, runtime.registry).run)
    bulk_jobs = BulkJobs(
        runtime.store("bulk_jobs"), fulfillment, runtime.registry, lease_seconds=settings.bulk_job_lease_seconds
    )
    runtime.background("bulk-jobs", bulk_jobs.run)
    return runtime, runtime.http_app(build_router(fulfillment), build_bulk_router(bulk_jobs))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
