"""Composition root of the orders service: system of record for orders and their timeline."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.orders import custom_statuses, search, store
from services.orders.api import build_router
from services.orders.api_warehouse import build_warehouse_router
from services.orders.application import Orders
from services.orders.bulk import BULK_JOBS, OrderBulkJobs, build_bulk_router
from services.orders.domain import Order
from services.orders.handlers import build_subscriptions
from services.orders.numbering import Sequencer
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings, seconds
from shared.store import AggregateStore, Database

log = logging.getLogger(__name__)


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    http_port: Port = 8001
    # How long a replica's claim on a bulk job lasts without progress before another takes it over.
    bulk_job_lease_seconds: Annotated[float, seconds(1, 3_600)] = 30.0


def bootstrap(runtime: ServiceRuntime) -> Orders:
    """The orders application over the runtime's store, the collection's indexes and the upgrade
    of earlier documents declared (the runtime creates and runs them at start)."""
    runtime.indexes(store.INDEXES)
    runtime.upgrade("orders", store.backfill_list_keys)
    statuses = runtime.store("custom_statuses", mapping=custom_statuses.MAPPING)
    orders = orders_on(runtime.database, runtime.store("orders", mapping=store.MAPPING), statuses)
    runtime.background("order-numbers", orders.numbers.run)
    return orders


def orders_on(
    database: Database,
    orders: AggregateStore[Order],
    statuses: AggregateStore[custom_statuses.CustomStatuses] | None = None,
) -> Orders:
    """The orders application over `orders` and the collections beside it in `database` (the
    sequencer's counter, the search terms, the custom statuses)."""
    if statuses is None:
        statuses = AggregateStore(database["custom_statuses"], lambda *_: None, mapping=custom_statuses.MAPPING)
    terms = search.Terms(database["order_terms"])
    numbers = Sequencer(database["order_numbers"], orders, terms)
    return Orders(orders, numbers, terms, custom_statuses.Statuses(statuses))


def bulk_jobs(
    runtime: ServiceRuntime, orders: Orders, lease_seconds: float, registry: CollectorRegistry | None = None
) -> OrderBulkJobs:
    """Bulk cancellations, stored in `bulk_jobs` (its indexes are in store.INDEXES)."""
    jobs = runtime.store("bulk_jobs", mapping=BULK_JOBS)
    return OrderBulkJobs(jobs, orders, registry=registry, lease_seconds=lease_seconds)


def build(settings: OrdersSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load_settings(OrdersSettings)
    runtime = ServiceRuntime(
        settings,
        collections=["orders"],
        description="Orders: placing, paying and cancelling orders; the order's fulfillment status and timeline.",
    )
    orders = bootstrap(runtime)
    jobs = bulk_jobs(runtime, orders, settings.bulk_job_lease_seconds, runtime.registry)
    runtime.subscribe(build_subscriptions(orders))
    runtime.background("bulk-jobs", jobs.run)
    return runtime, runtime.http_app(build_router(orders), build_warehouse_router(orders), build_bulk_router(jobs))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
