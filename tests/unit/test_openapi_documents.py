"""The services' OpenAPI documents say what the services answer (issue 13: "55 of 58 responses are
untyped objects; 422 is documented with FastAPI's {"detail": [...]} while the services answer
{"error": {...}}; other 4xx documented on 1 of 58 operations; Idempotency-Key on 0 of 18 POSTs; no
examples; operationIds like pay_order_orders__order_id__pay_post").

Each app is built in-process and asked for its document; nothing is started. The answers
themselves are checked against these documents by schemathesis (tests/e2e/test_openapi_conformance.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from openapi_spec_validator import validate
from pydantic import BaseModel, SecretStr

from services.fulfillment.app import FulfillmentSettings
from services.fulfillment.app import build as build_fulfillment
from services.inventory.app import InventorySettings
from services.inventory.app import build as build_inventory
from services.notifications.app import NotificationsSettings
from services.notifications.app import build as build_notifications
from services.orders.app import OrdersSettings
from services.orders.app import build as build_orders
from shared.auth import access_of, api_routes

Document = dict[str, Any]
NOWHERE: dict[str, Any] = {
    "kafka_bootstrap_servers": "127.0.0.1:9",
    "mongodb_uri": "mongodb://127.0.0.1:9/?directConnection=true",
    "auth_jwks_url": "http://127.0.0.1:9/jwks.json",
    "auth_issuer": "https://issuer.example",
    "auth_audience": "fulfillment-platform",
}
BUILDERS: dict[str, Callable[[], FastAPI]] = {
    "orders": lambda: build_orders(OrdersSettings(**NOWHERE))[1],
    "inventory": lambda: build_inventory(InventorySettings(**NOWHERE))[1],
    "fulfillment": lambda: build_fulfillment(FulfillmentSettings(**NOWHERE))[1],
    "notifications": lambda: build_notifications(
        NotificationsSettings(**NOWHERE, download_link_secret=SecretStr("test-download-link-secret-0123456789"))
    )[1],
}
ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
INVALID = {"$ref": "#/components/schemas/InvalidRequestResponse"}


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    return {name: build() for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def documents(apps: dict[str, FastAPI]) -> dict[str, Document]:
    return {name: app.openapi() for name, app in apps.items()}


def operations(documents: dict[str, Document]) -> Iterator[tuple[str, str, str, Document]]:
    for service, document in documents.items():
        for path, item in document["paths"].items():
            for method, operation in item.items():
                yield service, method, path, operation


@pytest.mark.parametrize("service", list(BUILDERS))
def test_each_service_document_is_valid_openapi_3_1(documents: dict[str, Document], service: str) -> None:
    assert documents[service]["openapi"].startswith("3.1")
    validate(documents[service])


def test_422_is_documented_with_the_error_shape_the_services_answer(documents: dict[str, Document]) -> None:
    for service, method, path, operation in operations(documents):
        documented = {status: r.get("content", {}).get("application/json", {}).get("schema")
                      for status, r in operation["responses"].items() if status.startswith("4")}  # fmt: skip
        assert all(schema == (INVALID if status == "422" else ERROR) for status, schema in documented.items()), (
            service, method, path, documented,
        )  # fmt: skip
    for document in documents.values():
        assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])


def test_every_protected_operation_documents_401_and_403_and_each_path_id_404(
    apps: dict[str, FastAPI], documents: dict[str, Document]
) -> None:
    checked = 0
    for service, app in apps.items():
        for route in api_routes(app):
            for method in route.methods or ():
                responses = documents[service]["paths"][route.path_format][method.lower()]["responses"]
                if access_of(route) is not None:
                    assert {"401", "403"} <= set(responses), (service, method, route.path)
                    checked += 1
                if route.dependant.path_params:
                    assert "404" in responses, (service, method, route.path)
                if method in ("POST", "PUT", "PATCH"):
                    assert "409" in responses, (service, method, route.path)
    assert checked >= 55


def test_idempotency_key_on_every_post(documents: dict[str, Document]) -> None:
    posts = [(s, p, o) for s, m, p, o in operations(documents) if m == "post"]
    assert len(posts) >= 30
    for service, path, operation in posts:
        names = [parameter["name"] for parameter in operation.get("parameters", [])]
        assert "Idempotency-Key" in names, (service, path)


def test_operation_ids_are_the_route_names(apps: dict[str, FastAPI], documents: dict[str, Document]) -> None:
    pay = documents["orders"]["paths"]["/orders/{order_id}/pay"]["post"]
    assert pay["operationId"] == "pay_order"
    for service, app in apps.items():
        ids = [o["operationId"] for _, _, _, o in operations({service: documents[service]})]
        assert len(ids) == len(set(ids)), service
        assert {route.name for route in api_routes(app)} <= set(ids)


def body_models(app: FastAPI) -> Iterator[tuple[APIRoute, type[BaseModel]]]:
    for route in api_routes(app):
        if route.body_field is not None:
            annotation = route.body_field.field_info.annotation
            models = [annotation] if isinstance(annotation, type) else list(getattr(annotation, "__args__", ()))
            found = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
            assert len(found) == 1, route.path
            yield route, found[0]


def test_every_request_body_has_an_example_the_operation_takes(
    apps: dict[str, FastAPI], documents: dict[str, Document]
) -> None:
    """The example is documented beside the body, and is a valid request (it validates)."""
    bodies = 0
    for service, app in apps.items():
        for route, model in body_models(app):
            for method in route.methods or ():
                media = documents[service]["paths"][route.path_format][method.lower()]["requestBody"]["content"]
                example = media["application/json"]["example"]
                model.model_validate(example)
                bodies += 1
    assert bodies >= 33
