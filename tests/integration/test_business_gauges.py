"""Issue 12: gauges of what stands now (fulfillment orders by status, ON_HOLD or unfulfilled past
their fulfill-by, bulk jobs running too long, the outbox backlog and its oldest entry's age), read
from the embedded store with the services' own indexes; every query they send is answered from an
index (the store's real query plan), as tests/e2e/test_every_query_indexed.py demands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from services.fulfillment.store import INDEXES, sort_key
from shared.business_metrics import StoreGauges
from shared.clock import NO_DEADLINE, iso, now
from shared.outbox import OUTBOX_PENDING_INDEX
from tests.conftest import store_server
from tests.e2e.test_every_query_indexed import unindexed


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with store_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


def ago(**delta: float) -> str:
    return iso(now() - timedelta(**delta))


def fulfillment_order(fo_id: str, status: str, fulfill_by: str | None) -> dict[str, Any]:
    created = ago(days=2)
    return {"_id": fo_id, "status": status, "fulfill_by": fulfill_by, "created_at": created,
            "sort_key": sort_key(fulfill_by or NO_DEADLINE, created, fo_id), "outbox_pending": False}  # fmt: skip


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_the_gauges_read_what_stands_now_from_indexed_queries(store_uri: str, tmp_path: Path) -> None:
    from shared.query_log import QueryShapes

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        store_uri, event_listeners=[QueryShapes(tmp_path, "gauges")]
    )
    database = client["fulfillment"]
    indexes = {**INDEXES, "fulfillment_orders": [*INDEXES["fulfillment_orders"], OUTBOX_PENDING_INDEX]}
    try:
        for name, models in indexes.items():
            await database[name].create_indexes(models)
        await database["fulfillment_orders"].insert_many([
            fulfillment_order("late-held", "ON_HOLD", ago(hours=3)),
            fulfillment_order("late-open", "OPEN", ago(minutes=5)),
            fulfillment_order("in-time", "OPEN", iso(now() + timedelta(days=1))),
            fulfillment_order("no-deadline", "OPEN", None),
            fulfillment_order("done", "CLOSED", ago(days=1)),
        ])  # fmt: skip
        pending = {"e1": {"seq": 1000, "event": {"id": "e1", "time": ago(minutes=10)}},
                   "e2": {"seq": 1001, "event": {"id": "e2", "time": ago(minutes=1)}}}  # fmt: skip
        await database["fulfillment_orders"].update_one(
            {"_id": "in-time"}, {"$set": {"outbox": pending, "outbox_pending": True}}
        )
        await database["bulk_jobs"].insert_many([
            {"_id": "j1", "status": "RUNNING", "created_at": ago(hours=2), "outbox_pending": False},
            {"_id": "j2", "status": "RUNNING", "created_at": ago(minutes=1), "outbox_pending": False},
            {"_id": "j3", "status": "COMPLETED", "created_at": ago(days=3), "outbox_pending": False},
        ])  # fmt: skip

        registry = CollectorRegistry()
        gauges = StoreGauges(registry)
        await gauges.refresh(database, indexes, [database["fulfillment_orders"], database["bulk_jobs"]])
    finally:
        await client.close()

    assert value(registry, "fulfillment_orders_open", status="OPEN") == 3
    assert value(registry, "fulfillment_orders_open", status="ON_HOLD") == 1
    assert value(registry, "fulfillment_orders_past_fulfill_by", status="OPEN") == 1
    assert value(registry, "fulfillment_orders_past_fulfill_by", status="ON_HOLD") == 1
    assert value(registry, "bulk_jobs_running") == 2
    assert 7100 < (value(registry, "bulk_job_oldest_running_age_seconds") or 0) < 7300
    assert value(registry, "outbox_pending_aggregates", collection="fulfillment_orders") == 1
    assert 590 < (value(registry, "outbox_oldest_pending_age_seconds", collection="fulfillment_orders") or 0) < 700
    assert value(registry, "outbox_pending_aggregates", collection="bulk_jobs") == 0
    assert (value(registry, "business_gauges_refreshed_timestamp_seconds") or 0) > 0

    queries = [json.loads(line) for path in tmp_path.glob("*.jsonl") for line in path.read_text().splitlines()]
    queries = [q for q in queries if q["command"] in ("find", "aggregate")]
    assert len(queries) >= 5, queries
    assert await unindexed(store_uri, queries) == []


async def test_a_service_without_the_index_runs_no_gauge_query(store_uri: str) -> None:
    """Inventory declares no fulfillment_orders or bulk_jobs index: those gauges are not read."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(store_uri)
    try:
        registry = CollectorRegistry()
        await StoreGauges(registry).refresh(client["inventory"], {}, [])
    finally:
        await client.close()
    assert value(registry, "fulfillment_orders_open", status="OPEN") is None
    assert (value(registry, "business_gauges_refreshed_timestamp_seconds") or 0) > 0
