"""Composition root of the fulfillment service: fulfillment orders, routing and fulfillments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.fulfillment import upgrade
from services.fulfillment.api import routers
from services.fulfillment.application import Fulfillment
from services.fulfillment.application.packing import PackRuns
from services.fulfillment.bulk import BulkJobs
from services.fulfillment.handlers import build_subscriptions
from services.fulfillment.lookups import (
    CACHE_SECONDS,
    KNOWN_LOCATIONS,
    KNOWN_STOCK,
    SHOP_SETTINGS,
    LocationDirectory,
    MaxParcels,
    PackRunInterval,
    PostPurchaseHold,
    SettingsStore,
    ShopSettings,
    StockView,
    SweepInterval,
)
from services.fulfillment.packer import Packer
from services.fulfillment.store import (
    BULK_JOBS,
    FULFILLMENT_ORDERS,
    INDEXES,
    ORDER_VIEWS,
    PACK_ORDERS,
    ROUTING_RECORDS,
)
from services.fulfillment.sweep import Sweeper
from shared.aggregates import A, StoreMapping
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings, seconds
from shared.store import AggregateStore


class FulfillmentSettings(ServiceSettings):
    service_name: str = "fulfillment"
    http_port: Port = 8003
    # Defaults of the shop settings until `PUT /settings` changes them (same bounds as there).
    auto_fulfill: bool = False
    sweep_interval_seconds: SweepInterval = 30.0
    post_purchase_hold_seconds: PostPurchaseHold = 3600.0
    pack_run_interval_seconds: PackRunInterval = 900.0
    max_parcels_per_shipment: MaxParcels = 4
    # How long a replica's claim on a bulk job lasts without progress before another takes it over.
    bulk_job_lease_seconds: Annotated[float, seconds(1, 3_600)] = 30.0
    # How long a replica serves the shop settings and the locations from memory (see store.CACHE_SECONDS).
    config_cache_seconds: Annotated[float, seconds(0, 300)] = CACHE_SECONDS


class Stores(Protocol):
    """Where the service's collections come from: the runtime's store (the relay publishes their
    outboxes), or, in a test, a database alone."""

    def store(self, collection: str, *, mapping: StoreMapping[A]) -> AggregateStore[A]: ...


@dataclass(frozen=True)
class FulfillmentApp:
    """The service's application objects, which the handlers, routes and background tasks call."""

    fulfillment: Fulfillment
    bulk_jobs: BulkJobs
    pack_runs: PackRuns


def bootstrap(
    stores: Stores, settings: FulfillmentSettings, registry: CollectorRegistry | None = None
) -> FulfillmentApp:
    """The application objects over these stores, configured by `settings`."""
    defaults = ShopSettings.model_validate(settings, from_attributes=True)  # the shop's settings of the same names
    fulfillment = Fulfillment(
        fulfillment_orders=stores.store("fulfillment_orders", mapping=FULFILLMENT_ORDERS),
        routings=stores.store("routings", mapping=ROUTING_RECORDS),
        stock=StockView(stores.store("stock_view", mapping=KNOWN_STOCK)),
        locations=LocationDirectory(stores.store("locations", mapping=KNOWN_LOCATIONS), settings.config_cache_seconds),
        settings=SettingsStore(
            stores.store("settings", mapping=SHOP_SETTINGS), defaults, settings.config_cache_seconds
        ),
    )
    bulk_jobs = BulkJobs(
        stores.store("bulk_jobs", mapping=BULK_JOBS),
        fulfillment,
        registry=registry,
        lease_seconds=settings.bulk_job_lease_seconds,
    )
    pack_runs = PackRuns(fulfillment, stores.store(PACK_ORDERS, mapping=ORDER_VIEWS))
    return FulfillmentApp(fulfillment, bulk_jobs, pack_runs)


def build(settings: FulfillmentSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load_settings(FulfillmentSettings)
    runtime = ServiceRuntime(
        settings,
        collections=["fulfillment_orders"],
        description="Fulfillment: fulfillment orders per location, routing, holds and fulfillments.",
    )
    runtime.indexes(INDEXES)
    app = bootstrap(runtime, settings, runtime.registry)
    runtime.upgrade("fulfillment", upgrade.upgrade)
    runtime.subscribe(build_subscriptions(app.fulfillment, runtime.authenticator, app.pack_runs))
    runtime.background("sweep", Sweeper(app.fulfillment, runtime.registry).run)
    runtime.background("bulk-jobs", app.bulk_jobs.run)
    packer = Packer(app.pack_runs, runtime.registry)
    runtime.background("pack-run", packer.run)
    return runtime, runtime.http_app(*routers(app.fulfillment, app.bulk_jobs, packer))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
