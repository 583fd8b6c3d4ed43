"""Idempotency-Key across a crash: the key and the effect are one write, so a retry after the
process died between them returns the first result instead of doing it again.

The crash is played in process: the middleware's own bookkeeping collection "dies" after the
effect was written (its writes raise, as if the process was gone), which leaves the key
`in_progress` exactly as a SIGKILL there would. The retry then goes through a healthy middleware
on the same store once the in-flight window has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from deploy.local_stack import LocalStack
from services.orders import store
from services.orders.api import build_router
from services.orders.app import OrdersSettings, orders_on
from shared.auth import Authenticator, install
from shared.http import install_error_handlers
from shared.idempotency import IdempotencyMiddleware
from shared.store import AggregateStore
from tests.conftest import auth_settings, bearer

ORDER = {
    "customer": {"email": "ada@example.com", "name": "Ada"},
    "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122", "country_code": "SE"},
    "currency": "SEK",
    "financial_status": "paid",
    "line_items": [{"sku": "MUG-1", "title": "Mug", "quantity": 1, "unit_price": "99.00"}],
}


class DiesBeforeMarkingDone:
    """The idempotency collection of a process that is killed right after the effect was written:
    the key was recorded in progress, and nothing after that reaches the store."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    async def insert_one(self, document: Any) -> Any:
        return await self._collection.insert_one(document)

    async def find_one(self, query: Any) -> Any:
        return await self._collection.find_one(query)

    async def update_one(self, *_: Any, **__: Any) -> Any:
        raise ConnectionError("the process was killed before the key was marked done")

    async def delete_one(self, *_: Any, **__: Any) -> Any:
        raise ConnectionError("the process was killed before the key was marked done")

    async def replace_one(self, *_: Any, **__: Any) -> Any:
        raise ConnectionError("the process was killed before the key was marked done")


@pytest.fixture
def orders_app(stack: LocalStack) -> Callable[[Any, Any], FastAPI]:
    """The orders routes as the service mounts them (auth, then Idempotency-Key), on a test store."""

    def build(db: Any, idempotency_keys: Any) -> FastAPI:
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(
            build_router(orders_on(db, AggregateStore(db["orders"], lambda *_: None, mapping=store.MAPPING)))
        )
        app.add_middleware(IdempotencyMiddleware, collection=idempotency_keys, in_flight_seconds=10)
        install(app, Authenticator(OrdersSettings(**auth_settings(stack))))
        return app

    return build


@pytest.fixture
def client(stack: LocalStack) -> Callable[[FastAPI], httpx.AsyncClient]:
    def open_client(app: FastAPI) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://t", headers=bearer(stack))

    return open_client


async def test_a_crash_after_the_order_is_written_does_not_create_the_order_twice(
    db: Any, orders_app: Callable[[Any, Any], FastAPI], client: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    """Kill orders after the order is written but before the key is marked done: the retry must
    return the first order, not create a second one (which would ship)."""
    key = {"Idempotency-Key": "checkout-7f3a"}
    async with client(orders_app(db, DiesBeforeMarkingDone(db["idempotency_keys"]))) as crashing:
        await crashing.post("/orders", json=ORDER, headers=key)
    assert await db["orders"].count_documents({}) == 1
    first = await db["orders"].find_one({})
    record = await db["idempotency_keys"].find_one({"_id": key["Idempotency-Key"]})
    assert record is not None and record["state"] == "in_progress", "the crash left the key in progress"

    async with client(orders_app(db, db["idempotency_keys"])) as healthy:
        during = await healthy.post("/orders", json=ORDER, headers=key)
        assert during.status_code == 409, "within the in-flight window the first attempt may still be running"
        started = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
        await db["idempotency_keys"].update_one({"_id": key["Idempotency-Key"]}, {"$set": {"started_at": started}})

        retry = await healthy.post("/orders", json=ORDER, headers=key)
        assert retry.status_code == 201, retry.text
        assert retry.json()["id"] == first["_id"]
        replay = await healthy.post("/orders", json=ORDER, headers=key)
        assert replay.headers.get("idempotent-replayed") == "true"
        assert replay.json()["id"] == first["_id"]

    assert await db["orders"].count_documents({}) == 1, "the order was created twice"
    done = await db["idempotency_keys"].find_one({"_id": key["Idempotency-Key"]})
    assert done is not None and done["state"] == "done", "the key no longer stays in progress"


async def test_a_crash_after_an_action_is_applied_does_not_apply_it_twice(
    db: Any, orders_app: Callable[[Any, Any], FastAPI], client: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    """The same for an action on an existing order: the retry of a cancel that crashed after the
    cancel was written answers with the cancelled order, not a 409 'already cancelled'."""
    async with client(orders_app(db, db["idempotency_keys"])) as healthy:
        created = await healthy.post("/orders", json=ORDER)
        order_id = created.json()["id"]
    cancel = {"refund": "now", "restock": True, "notify_customer": True, "reason": "customer"}
    key = {"Idempotency-Key": "cancel-1"}
    async with client(orders_app(db, DiesBeforeMarkingDone(db["idempotency_keys"]))) as crashing:
        await crashing.post(f"/orders/{order_id}/cancel", json=cancel, headers=key)
    started = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    await db["idempotency_keys"].update_one({"_id": key["Idempotency-Key"]}, {"$set": {"started_at": started}})
    async with client(orders_app(db, db["idempotency_keys"])) as healthy:
        retry = await healthy.post(f"/orders/{order_id}/cancel", json=cancel, headers=key)
    assert retry.status_code == 200, retry.text
    assert retry.json()["financial_status"] == "refunded"
    stored = await db["orders"].find_one({"_id": order_id})
    cancelled_events = [e for e in stored["timeline"] if e["type"] == "order.cancelled"]
    assert len(cancelled_events) == 1
