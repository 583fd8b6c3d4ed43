"""The four running services answer as their OpenAPI documents say (issue 13: "schemathesis over
the four APIs with the bearer token finds no 5xx and no schema mismatch").

Schemathesis generates requests from each document (the examples, then a few generated ones per
operation, bounded) and sends them with an admin token to the session stack; every answer must
not be a 5xx, must have a documented status and content type, and must match the documented
schema. Random ids mostly find nothing (404), so a second test makes real resources (a location,
stock, an order shipped) and holds their answers to the same documents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deploy.local_stack import LocalStack
from tests.conftest import bearer, eventually
from tests.e2e.test_fulfillment_flows import Shop, physical
from tests.unit.test_openapi_documents import BUILDERS

MAX_EXAMPLES = 4
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}, "generation": {"max-examples": 4}}
)
SLOW = r"^/pack-runs$"
"""A pack run examines every order the session's tests left: not a request to repeat at random."""

DOCUMENTS = {name: build().openapi() for name, build in BUILDERS.items()}
SCHEMAS = {
    name: schemathesis.openapi.from_dict(document, config=CONFIG).exclude(path_regex=SLOW)
    for name, document in DOCUMENTS.items()
}


@pytest.fixture(scope="module")
def session(stack: LocalStack) -> Iterator[requests.Session]:
    with requests.Session() as opened:
        opened.headers.update(bearer(stack))
        yield opened


def conformance(service: str) -> Callable[..., None]:
    @SCHEMAS[service].parametrize()
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    def test(case: Any, stack: LocalStack, session: requests.Session) -> None:
        response = case.call(base_url=stack.url(service), session=session, timeout=10)
        case.validate_response(response, checks=CHECKS)

    test.__doc__ = f"Every {service} operation answers as its OpenAPI document says."
    conforming: Callable[..., None] = test
    return conforming


test_orders_api_conforms = conformance("orders")
test_inventory_api_conforms = conformance("inventory")
test_fulfillment_api_conforms = conformance("fulfillment")
test_notifications_api_conforms = conformance("notifications")


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


def conforms(service: str, path: str, method: str, reply: httpx.Response) -> None:
    """The answer has a documented status and matches its documented schema."""
    assert reply.status_code < 500, reply.text
    SCHEMAS[service][path][method].validate_response(reply)


async def test_real_resources_answer_as_documented(shop: Shop, stack: LocalStack, http: httpx.AsyncClient) -> None:
    """An order placed, routed, reserved and shipped, and everything about it read back: each
    answer matches the schema its operation documents (the views are not only 404s)."""
    inventory, orders, fulfillment = stack.url("inventory"), stack.url("orders"), stack.url("fulfillment")
    location, sku = await shop.location("conformance"), shop.sku("MUG")
    await shop.stock(location, sku, 5)
    order = await shop.paid_order(physical(sku, 2))
    (fo,) = await shop.settle(order["id"], 1)
    shipped = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {"tracking": {"numbers": ["1Z999"]}})
    conforms("fulfillment", "/fulfillment-orders/{fulfillment_order_id}/fulfillments", "POST", shipped)
    fulfillment_id = shipped.json()["id"]
    await shop.display_status(order["id"], "FULFILLED")

    reads = [
        ("orders", "/orders/{order_id}", f"{orders}/orders/{order['id']}"),
        ("orders", "/orders", f"{orders}/orders?limit=5"),
        ("orders", "/custom-statuses", f"{orders}/custom-statuses"),
        ("inventory", "/locations/{location_id}", f"{inventory}/locations/{location}"),
        ("inventory", "/locations", f"{inventory}/locations"),
        ("inventory", "/stock/{sku}", f"{inventory}/stock/{sku}"),
        ("inventory", "/reservations", f"{inventory}/reservations?order_id={order['id']}"),
        ("inventory", "/reservations/{fulfillment_order_id}", f"{inventory}/reservations/{fo['id']}"),
        ("fulfillment", "/fulfillment-orders", f"{fulfillment}/fulfillment-orders?order_id={order['id']}"),
        ("fulfillment", "/fulfillment-orders/{fulfillment_order_id}", f"{fulfillment}/fulfillment-orders/{fo['id']}"),
        ("fulfillment", "/fulfillments/{fulfillment_id}", f"{fulfillment}/fulfillments/{fulfillment_id}"),
        ("fulfillment", "/routing/stock/{sku}", f"{fulfillment}/routing/stock/{sku}"),
        ("fulfillment", "/settings", f"{fulfillment}/settings"),
        ("fulfillment", "/bulk-jobs", f"{fulfillment}/bulk-jobs"),
        ("notifications", "/notifications", f"{stack.url('notifications')}/notifications?order_id={order['id']}"),
    ]
    for service, path, url in reads:
        reply = await http.get(url)
        assert reply.status_code == 200, (url, reply.text)
        conforms(service, path, "GET", reply)

    job = await http.post(
        f"{fulfillment}/bulk-jobs", json={"action": "hold", "fulfillment_order_ids": [fo["id"]], "reason": "OTHER"}
    )
    assert job.status_code == 202, job.text
    conforms("fulfillment", "/bulk-jobs", "POST", job)

    async def job_done() -> httpx.Response | None:
        reply = await http.get(f"{fulfillment}/bulk-jobs/{job.json()['id']}")
        return reply if reply.json()["status"] != "RUNNING" else None  # the finished job's answer

    conforms("fulfillment", "/bulk-jobs/{job_id}", "GET", await eventually(job_done, timeout=30))
    run = await http.post(f"{fulfillment}/pack-runs")
    assert run.status_code == 201, run.text
    conforms("fulfillment", "/pack-runs", "POST", run)
    adjusted = await http.post(f"{inventory}/stock/{location}/{sku}/adjustments", json={"delta": 1, "reason": "count"})
    conforms("inventory", "/stock/{location_id}/{sku}/adjustments", "POST", adjusted)
    cancelled = await http.post(f"{fulfillment}/fulfillments/{fulfillment_id}/cancel")
    conforms("fulfillment", "/fulfillments/{fulfillment_id}/cancel", "POST", cancelled)
