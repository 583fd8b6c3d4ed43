"""What every service refuses before it does anything: unknown query parameters (issue:
"`GET /fulfillment-orders` ignores unknown query parameters (`?order_id[$ne]=x` returns
everything) where orders answers 422"), and values of the wrong type or out of bounds (issue:
"`PUT /settings {"sweep_interval_seconds": 1e-300}` ... `"auto_fulfill": 0` is accepted as a
boolean").

Each service's app is built in-process and asked directly; these refusals come before any
database or broker is touched, so none is started. List routes are found from the apps' OpenAPI:
a list route added later is covered by the same test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
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
from shared.runtime import ServiceRuntime
from tests.conftest import auth_settings, bearer

NOWHERE: dict[str, Any] = {
    "kafka_bootstrap_servers": "127.0.0.1:9",
    "mongodb_uri": "mongodb://127.0.0.1:9/?directConnection=true",
}
BUILDERS: dict[str, Callable[[dict[str, Any]], tuple[ServiceRuntime, FastAPI]]] = {
    "orders": lambda auth: build_orders(OrdersSettings(**NOWHERE, **auth)),
    "inventory": lambda auth: build_inventory(InventorySettings(**NOWHERE, **auth)),
    "fulfillment": lambda auth: build_fulfillment(FulfillmentSettings(**NOWHERE, **auth)),
    "notifications": lambda auth: build_notifications(
        NotificationsSettings(**NOWHERE, **auth, download_link_secret=SecretStr("test-download-link-secret-0123456789"))
    ),
}


@pytest.fixture(scope="module")
def apps(stack: LocalStack) -> dict[str, FastAPI]:
    """The apps trust the session stack's signing key (only for its tokens: nothing else is used)."""
    return {name: build(auth_settings(stack))[1] for name, build in BUILDERS.items()}


@pytest.fixture
async def clients(stack: LocalStack, apps: dict[str, FastAPI]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    opened = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=5, headers=bearer(stack)
        )
        for name, app in apps.items()
    }
    yield opened
    for client in opened.values():
        await client.aclose()


def list_routes(app: FastAPI) -> list[str]:
    """The paths of GET routes that take query parameters, as the service's OpenAPI lists them."""
    return [
        path
        for path, operations in app.openapi()["paths"].items()
        if any(p["in"] == "query" for p in operations.get("get", {}).get("parameters", []))
    ]


def some_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def fields(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 422, reply.text
    body: dict[str, Any] = reply.json()["error"]
    assert body["code"] == "invalid_request"
    return [detail["field"] for detail in body["details"]]


def test_the_list_routes_are_found(apps: dict[str, FastAPI]) -> None:
    """Guards the test below against finding nothing to check."""
    found = {(name, path) for name, app in apps.items() for path in list_routes(app)}
    assert {
        ("orders", "/orders"),
        ("inventory", "/reservations"),
        ("fulfillment", "/fulfillment-orders"),
        ("fulfillment", "/bulk-jobs"),
        ("notifications", "/notifications"),
    } <= found


async def test_every_list_route_of_every_service_refuses_an_unknown_query_parameter(
    apps: dict[str, FastAPI], clients: dict[str, httpx.AsyncClient]
) -> None:
    checked = 0
    for name, app in apps.items():
        for path in list_routes(app):
            reply = await clients[name].get(some_path(path), params={"order_id[$ne]": "x", "bogus": "1"})
            assert fields(reply) == ["query.bogus", "query.order_id[$ne]"], (name, path)
            assert "known: " in reply.json()["error"]["details"][0]["reason"]
            checked += 1
    assert checked >= 5


async def test_order_id_ne_is_refused_on_fulfillment_orders(clients: dict[str, httpx.AsyncClient]) -> None:
    reply = await clients["fulfillment"].get("/fulfillment-orders", params={"order_id[$ne]": "x"})
    assert fields(reply) == ["query.order_id[$ne]"]
    misspelt = await clients["fulfillment"].get("/fulfillment-orders", params={"order": "x", "limit": 5})
    assert fields(misspelt) == ["query.order"]


async def test_a_route_that_takes_no_query_parameters_ignores_them(clients: dict[str, httpx.AsyncClient]) -> None:
    """A download link may come back with a mail client's tracking parameters; health checks too."""
    for client in clients.values():
        assert (await client.get("/healthz", params={"utm_source": "mail"})).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/settings", {"sweep_interval_seconds": 1e-300}, "sweep_interval_seconds"),
        ("PUT", "/settings", {"sweep_interval_seconds": 0.5}, "sweep_interval_seconds"),
        ("PUT", "/settings", {"post_purchase_hold_seconds": 10**9}, "post_purchase_hold_seconds"),
        ("PUT", "/settings", {"auto_fulfill": 0}, "auto_fulfill"),
        ("PUT", "/settings", {"auto_fulfill": "yes"}, "auto_fulfill"),
        ("POST", "/fulfillment-orders/fo-1/fulfillments", {"notify_customer": 0}, "notify_customer"),
        ("POST", "/fulfillment-orders/fo-1/fulfillments",
         {"line_items": [{"line_item_id": "li-1", "quantity": "2"}]}, "line_items.0.quantity"),
        ("POST", "/fulfillment-orders/fo-1/fulfillments",
         {"line_items": [{"line_item_id": "li-1", "quantity": 2.0}]}, "line_items.0.quantity"),
        ("POST", "/fulfillments/f-1/tracking", {"notify_customer": 1}, "notify_customer"),
        ("POST", "/bulk-jobs", {"action": "fulfill", "fulfillment_order_ids": ["fo-1"], "notify_customer": 0},
         "notify_customer"),
    ],
)  # fmt: skip
async def test_fulfillment_refuses_absurd_values_and_loose_types(
    clients: dict[str, httpx.AsyncClient], method: str, path: str, body: dict[str, Any], field: str
) -> None:
    reply = await clients["fulfillment"].request(method, path, json=body)
    assert fields(reply) == [field]


async def test_paging_beyond_any_list_is_refused(clients: dict[str, httpx.AsyncClient]) -> None:
    reply = await clients["fulfillment"].get("/fulfillment-orders", params={"offset": "9" * 400})
    assert fields(reply) == ["query.offset"]
