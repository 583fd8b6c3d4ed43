"""Every route of every service, read from the apps themselves (so a route added later is walked
too): without a token 401, with a token lacking the route's scope 403, with the right scope the
normal answer; and a 401 or 403 changes nothing (issue 6, "Identity and access").

The four apps run in-process against the real embedded store, each with a database of its own and
no broker: an event a request emitted would sit in a document's outbox, so "the store is unchanged"
also means "nothing was emitted". Idempotency keys are sent on every POST, and their records are
part of the store compared.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr

from deploy.local_stack import LocalStack
from services.fulfillment.app import FulfillmentSettings
from services.fulfillment.app import build as build_fulfillment
from services.inventory.app import InventorySettings
from services.inventory.app import build as build_inventory
from services.notifications.app import NotificationsSettings
from services.notifications.app import build as build_notifications
from services.orders.app import OrdersSettings
from services.orders.app import build as build_orders
from shared.auth import MERCHANT_SCOPES, SERVICE_SCOPE, access_of, api_routes
from shared.catalog import FulfillmentServiceResponse, InventoryLevel, InventoryReservation, Location, StockLine
from shared.runtime import ServiceRuntime
from shared.store import now_iso
from tests.conftest import auth_settings, bearer
from tests.integration.test_fulfillment_sweep import paid, replica, stocked

PUBLIC = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/asyncapi"), ("GET", "/asyncapi/ui"),
    ("GET", "/asyncapi.yaml"),
}  # fmt: skip
PUBLIC_OF = {"notifications": {("GET", "/downloads/{token}")}}

ORDER = {
    "customer": {"email": "buyer@example.com", "name": "Buyer"}, "currency": "SEK", "financial_status": "pending",
    "shipping_address": {"address1": "Storgatan 1", "city": "Lund", "country_code": "SE"},
    "line_items": [{"sku": "WALK-MUG", "title": "Mug", "quantity": 1, "unit_price": "10.00"}],
}  # fmt: skip

# Requests that would change something if they got through (a route not listed gets `{}`).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/orders"): ORDER,
    ("POST", "/orders/{order_id}/cancel"): {"refund": "none", "restock": True, "reason": "customer"},
    ("PUT", "/locations/priorities"): {"location_ids": ["walk-wh"]},
    ("PUT", "/locations/{location_id}"): {"name": "Renamed", "priority": 7},
    ("PUT", "/stock/{location_id}/{sku}"): {"on_hand": 99},
    ("POST", "/stock/{location_id}/{sku}/adjustments"): {"delta": 5, "reason": "received"},
    ("POST", "/fulfillment-orders/{fulfillment_order_id}/hold"): {"reason": "OTHER", "note": "walk"},
    ("POST", "/fulfillment-orders/{fulfillment_order_id}/move"): {"location_id": "walk-wh"},
    ("POST", "/fulfillment-orders/{fulfillment_order_id}/fulfill-by"): {"fulfill_by": "2030-01-01T00:00:00+00:00"},
    ("POST", "/fulfillment-orders/{fulfillment_order_id}/schedule"): {"fulfill_at": "2030-01-01T00:00:00+00:00"},
    ("POST", "/fulfillments/{fulfillment_id}/tracking"): {"numbers": ["WALK-2"]},
    ("PUT", "/settings"): {"auto_fulfill": True},
    ("POST", "/bulk-jobs"): {"action": "hold", "fulfillment_order_ids": ["{fulfillment_order_id}"], "reason": "OTHER"},
}


@dataclass
class Service:
    name: str
    runtime: ServiceRuntime
    app: FastAPI
    client: httpx.AsyncClient

    def routes(self) -> list[tuple[str, APIRoute]]:
        return sorted(
            ((method, route) for route in api_routes(self.app) for method in route.methods or ()),
            key=lambda item: (item[1].path, item[0]),
        )

    async def store(self) -> dict[str, list[Any]]:
        """Every document of every collection, outboxes and idempotency records included."""
        database = self.runtime.database
        found = {
            name: [doc async for doc in database[name].find({}).sort("_id", 1)]
            for name in sorted(await database.list_collection_names())
        }
        return {name: docs for name, docs in found.items() if docs}


@pytest.fixture
async def services(mongo_uri: str, stack: LocalStack) -> AsyncIterator[dict[str, Service]]:
    common = {"mongodb_uri": mongo_uri, "kafka_bootstrap_servers": "127.0.0.1:9", **auth_settings(stack)}
    builders: dict[str, Callable[[], tuple[ServiceRuntime, FastAPI]]] = {
        "orders": lambda: build_orders(OrdersSettings(**common, mongodb_database=unique("orders"))),
        "inventory": lambda: build_inventory(InventorySettings(**common, mongodb_database=unique("inventory"))),
        "fulfillment": lambda: build_fulfillment(FulfillmentSettings(**common, mongodb_database=unique("fulfillment"))),
        "notifications": lambda: build_notifications(
            NotificationsSettings(
                **common, mongodb_database=unique("notifications"), download_link_secret=SecretStr("s" * 32)
            )
        ),
    }
    built: dict[str, Service] = {}
    for name, build in builders.items():
        runtime, app = build()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=10)
        built[name] = Service(name, runtime, app, client)
    try:
        yield built
    finally:
        for service in built.values():
            await service.client.aclose()
            await service.runtime.mongo.drop_database(service.runtime.database.name)
            await service.runtime.mongo.close()


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:12]}"


async def seed(services: dict[str, Service], stack: LocalStack) -> dict[str, str]:
    """Something real behind every path parameter: an order, a location with stock, a fulfillment
    order with a shipment, a bulk job (the tests then show that none of them changes)."""
    merchant = bearer(stack)
    orders, inventory, fulfillment = services["orders"], services["inventory"], services["fulfillment"]
    order = (await orders.client.post("/orders", json=ORDER, headers=merchant)).json()
    await inventory.client.put("/locations/walk-wh", json={"name": "Walk", "priority": 1}, headers=merchant)
    await inventory.client.put("/stock/walk-wh/WALK-MUG", json={"on_hand": 10}, headers=merchant)
    rules = replica(fulfillment.runtime.database)
    await stocked(rules, "walk-wh", "WALK-MUG", 10)
    routed = paid("WALK-MUG", quantity=2)
    await rules.route_paid_order(routed, f"paid-{routed.id}")
    [fo] = await rules.fulfillment_orders.find({"order_id": routed.id})
    lines = [StockLine(sku="WALK-MUG", quantity=2)]
    reserved = InventoryReservation(order_id=routed.id, fulfillment_order_id=fo.id, location_id="walk-wh", lines=lines)
    await rules.reservation_confirmed(reserved, f"reserved-{fo.id}")
    partial = {"line_items": [{"line_item_id": fo.line_items[0].line_item_id, "quantity": 1}]}
    shipped = await fulfillment.client.post(f"/fulfillment-orders/{fo.id}/fulfillments", json=partial, headers=merchant)
    assert shipped.status_code == 201, shipped.text
    job = await fulfillment.client.post("/bulk-jobs", json={"action": "hold", "fulfillment_order_ids": [fo.id],
                                                            "reason": "OTHER"}, headers=merchant)  # fmt: skip
    return {
        "order_id": order["id"], "location_id": "walk-wh", "sku": "WALK-MUG", "fulfillment_order_id": fo.id,
        "fulfillment_id": shipped.json()["id"], "job_id": job.json()["id"], "token": "not-a-token",
    }  # fmt: skip


def request_for(method: str, route: APIRoute, ids: dict[str, str]) -> tuple[str, Any, dict[str, str]]:
    """The URL (path parameters filled with the seeded ids), a body and the query the route needs."""
    path = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "unknown"), route.path_format)
    body = BODIES.get((method, route.path), {} if method in ("POST", "PUT") else None)
    if body is not None:
        body = _filled(body, ids)
    query = {"order_id": ids["order_id"]} if route.path in ("/notifications", "/reservations") else {}
    return path, body, query


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    return value


async def test_every_route_refuses_without_a_token_or_the_scope_and_a_refusal_changes_nothing(
    services: dict[str, Service], stack: LocalStack
) -> None:
    ids = await seed(services, stack)
    walked: list[tuple[str, str, str, tuple[str, ...]]] = []
    services_only: list[tuple[str, str, str]] = []  # a fulfillment service's own answers
    before = {name: await service.store() for name, service in services.items()}

    for name, service in services.items():
        public = {(m, r.path) for m, r in service.routes() if access_of(r) is None}
        assert public == PUBLIC | PUBLIC_OF.get(name, set()), (
            f"{name}: only health, metrics, docs, AsyncAPI and download links are public"
        )
        for method, route in service.routes():
            access = access_of(route)
            if access is None:
                continue
            path, body, query = request_for(method, route, ids)
            headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
            if not access.scopes:
                assert access.fulfillment_service, f"{method} {route.path} must name the merchant scope it needs"
                await refuses_all_but_the_owning_service(stack, service, method, path, body, query, headers)
                services_only.append((name, method, route.path))
                continue

            anonymous = await service.client.request(method, path, json=body, params=query, headers=headers)
            assert anonymous.status_code == 401, (name, method, path, anonymous.text)
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            assert anonymous.json()["error"]["code"] == "unauthenticated"

            lacking = bearer(stack, *[scope for scope in MERCHANT_SCOPES if scope not in access.scopes])
            service_token = bearer(stack, "fulfillment_service:walk-3pl", sub="walk-3pl")
            for token in (lacking, service_token):
                refused = await service.client.request(method, path, json=body, params=query,
                                                       headers={**headers, **token})  # fmt: skip
                if token is service_token and refused.status_code == 200:
                    # open to fulfillment services, which see only their own: none here
                    assert access.fulfillment_service and refused.json()["items"] == [], (name, method, path)
                    continue
                assert refused.status_code == 403, (name, method, path, refused.text)
                error = refused.json()["error"]
                assert error["code"] == "forbidden"
                assert error["details"]["required_scopes"] == list(access.scopes)
                assert all(scope in error["message"] for scope in access.scopes)
                assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
            walked.append((name, method, route.path, access.scopes))

    after = {name: await service.store() for name, service in services.items()}
    for name in services:
        assert after[name] == before[name], f"a refused request changed {name}'s store"

    for name, method, route_path, scopes in walked:  # with just the scope the route names
        service = services[name]
        route = next(r for m, r in service.routes() if m == method and r.path == route_path)
        path, body, query = request_for(method, route, ids)
        reply = await service.client.request(method, path, json=body, params=query, headers=bearer(stack, *scopes))
        assert reply.status_code not in (401, 403), (name, method, path, reply.text)
        assert reply.status_code < 500, (name, method, path, reply.text)
    assert {name for name, *_ in walked} == set(services) and len(walked) >= 37  # as many as on the day it was written
    assert len(services_only) >= 6  # the answers of the fulfillment services' HTTP API


async def refuses_all_but_the_owning_service(
    stack: LocalStack, service: Service, method: str, path: str, body: Any, query: Any, headers: dict[str, str]
) -> None:
    """A route only a fulfillment service may call (its answers): no token is 401; the merchant's
    token, with every merchant scope, is 403 naming the service scope; a service that does not
    run the fulfillment order's location is refused (403, or 404 for what it cannot see)."""
    anonymous = await service.client.request(method, path, json=body, params=query, headers=headers)
    assert anonymous.status_code == 401, (method, path, anonymous.text)
    merchant = await service.client.request(method, path, json=body, params=query,
                                            headers={**headers, **bearer(stack, *MERCHANT_SCOPES)})  # fmt: skip
    assert merchant.status_code == 403, (method, path, merchant.text)
    assert merchant.json()["error"]["details"]["required_scopes"] == [SERVICE_SCOPE]
    stranger = bearer(stack, "fulfillment_service:walk-3pl", sub="walk-3pl")
    refused = await service.client.request(method, path, json=body, params=query, headers={**headers, **stranger})
    assert refused.status_code in (403, 404), (method, path, refused.text)


async def test_a_fulfillment_service_token_reaches_only_its_own_fulfillment_orders(
    services: dict[str, Service], stack: LocalStack
) -> None:
    """Issue 6: a fulfillment service's token reads and acts only on the fulfillment orders at the
    locations its own service runs, and only as a service may (it ships what it accepted); the
    merchant's and other services' orders are 403, and a refusal changes nothing."""
    ids = await seed(services, stack)  # the merchant's own location and fulfillment order
    fulfillment = services["fulfillment"]
    merchant, acme, other = (
        bearer(stack),
        bearer(stack, "fulfillment_service:acme-3pl", sub="acme-3pl"),
        bearer(stack, "fulfillment_service:other-3pl", sub="other-3pl"),
    )
    rules = replica(fulfillment.runtime.database)
    await rules.location_updated(
        Location(id="acme-wh", name="Acme", priority=2, fulfillment_service="acme-3pl"), now_iso()
    )
    await stocked_at(rules, "acme-wh", "ACME-MUG", 10)
    order = paid("ACME-MUG", quantity=1)
    await rules.route_paid_order(order, f"paid-{order.id}")
    [fo] = await rules.fulfillment_orders.find({"order_id": order.id})
    assert fo.fulfillment_service == "acme-3pl"
    lines = [StockLine(sku="ACME-MUG", quantity=1)]
    reserved = InventoryReservation(order_id=order.id, fulfillment_order_id=fo.id, location_id="acme-wh", lines=lines)
    await rules.reservation_confirmed(reserved, f"reserved-{fo.id}")
    client = fulfillment.client

    listed = (await client.get("/fulfillment-orders", headers=acme)).json()["items"]
    assert [item["id"] for item in listed] == [fo.id]
    assert (await client.get("/fulfillment-orders", headers=other)).json()["items"] == []
    assert {item["id"] for item in (await client.get("/fulfillment-orders", headers=merchant)).json()["items"]} >= {
        fo.id,
        ids["fulfillment_order_id"],
    }
    assert (await client.get(f"/fulfillment-orders/{fo.id}", headers=acme)).status_code == 200

    before = await fulfillment.store()
    ship_all: dict[str, Any] = {"tracking": {"numbers": ["ACME-1"]}}
    for token, fo_id in ((acme, ids["fulfillment_order_id"]), (other, fo.id)):
        assert (await client.get(f"/fulfillment-orders/{fo_id}", headers=token)).status_code == 403
        refused = await client.post(f"/fulfillment-orders/{fo_id}/fulfillments", json=ship_all,
                                    headers={**token, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["details"] == {"required_scopes": ["fulfillment:write"]}
    held = await client.post(f"/fulfillment-orders/{fo.id}/hold", json={"reason": "OTHER"}, headers=acme)
    assert held.status_code == 403  # not an action a fulfillment service takes
    assert await fulfillment.store() == before

    early = await client.post(f"/fulfillment-orders/{fo.id}/fulfillments", json=ship_all, headers=acme)
    assert early.status_code == 409, early.text  # a service ships what it accepted, not before
    submitted = await client.post(f"/fulfillment-orders/{fo.id}/submit-request", headers=merchant)
    assert submitted.json()["request_status"] == "SUBMITTED"
    accepted = FulfillmentServiceResponse(fulfillment_order_id=fo.id, fulfillment_service="acme-3pl")
    await rules.service_answered("request_accepted", accepted, "accept-1")
    shipped = await client.post(f"/fulfillment-orders/{fo.id}/fulfillments", json=ship_all, headers=acme)
    assert shipped.status_code == 201, shipped.text
    assert shipped.json()["tracking"]["numbers"] == ["ACME-1"]
    assert shipped.json()["fulfillment_order"]["status"] == "CLOSED"
    stored = await fulfillment.runtime.database["fulfillment_orders"].find_one({"_id": fo.id})
    assert stored is not None
    events = {entry["event"]["type"]: entry["event"] for entry in stored["outbox"].values()}
    assert events["fulfillment.created"]["actor"] == "acme-3pl"  # the service's token is the actor
    assert events["fulfillment_request.submitted"]["actor"] == "test-merchant"


async def stocked_at(rules: Any, location_id: str, sku: str, available: int) -> None:
    level = InventoryLevel(sku=sku, location_id=location_id, on_hand=available, reserved=0, available=available)
    await rules.stock_level_changed(level, now_iso())


async def test_a_caller_without_the_token_is_refused_before_an_idempotency_key_is_looked_at(
    services: dict[str, Service], stack: LocalStack
) -> None:
    """The boundary comes first: a retry of a merchant's request, same key and same body, is not
    replayed to a caller without a valid token or the scope (401/403, not the merchant's answer),
    and a caller with the scope but another subject gets no one else's answer either."""
    orders = services["orders"].client
    key = {"Idempotency-Key": uuid.uuid4().hex}
    placed = await orders.post("/orders", json=ORDER, headers={**key, **bearer(stack)})
    assert placed.status_code == 201
    assert (await orders.post("/orders", json=ORDER, headers=key)).status_code == 401
    lacking = await orders.post("/orders", json=ORDER, headers={**key, **bearer(stack, "orders:read")})
    assert lacking.status_code == 403
    stranger = await orders.post("/orders", json=ORDER, headers={**key, **bearer(stack, sub="someone-else")})
    assert stranger.status_code == 422 and stranger.json()["error"]["code"] == "idempotency_key_reused"
    replayed = await orders.post("/orders", json=ORDER, headers={**key, **bearer(stack)})
    assert replayed.headers.get("idempotent-replayed") == "true" and replayed.json()["id"] == placed.json()["id"]
