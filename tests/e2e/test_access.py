"""The trust boundary on the running stack (issue 6, "Identity and access"): an anonymous or
under-scoped change is refused and nothing is emitted; the caller's token subject is the actor
of the events its call causes, down the chain of services, and of the order's timeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from deploy.auth import new_signing_key
from deploy.local_stack import LocalStack
from shared.auth import mint_token
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop, physical
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

ORDERS_TOPIC, INVENTORY_TOPIC = "orders.events.v1", "inventory.events.v1"


def pending_order(sku: str) -> dict[str, Any]:
    return {
        "customer": {"email": "buyer@example.com", "name": "Buyer"}, "currency": "SEK", "financial_status": "pending",
        "shipping_address": {"address1": "Storgatan 1", "city": "Lund", "country_code": "SE"},
        "line_items": [physical(sku, 1)],
    }  # fmt: skip


async def test_an_anonymous_or_under_scoped_change_is_refused_and_emits_nothing(
    stack: LocalStack, token: Callable[..., str]
) -> None:
    """Issue 6: an anonymous `POST /orders/{id}/cancel`, `PUT /stock/...` and `PUT /settings` all
    returned 200. Now 401 without a token, 403 naming the scope without it; the order stays
    pending, and the next event on its key is the one a permitted call made."""
    orders, inventory, fulfillment = stack.url("orders"), stack.url("inventory"), stack.url("fulfillment")
    merchant = {"authorization": f"Bearer {token('orders:read', 'orders:write', sub='alice')}"}
    reader = {"authorization": f"Bearer {token('orders:read', 'inventory:read', 'fulfillment:read', sub='bob')}"}
    cancel = {"refund": "none", "restock": True, "notify_customer": True, "reason": "customer"}
    async with httpx.AsyncClient(timeout=10) as http, TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC) as kafka:
        order = (await http.post(f"{orders}/orders", json=pending_order("ACCESS-MUG"), headers=merchant)).json()
        settings_before = (await http.get(f"{fulfillment}/settings", headers=reader)).json()
        attempts = [
            ("POST", f"{orders}/orders/{order['id']}/cancel", cancel, "orders:write"),
            ("PUT", f"{inventory}/stock/nowhere/ACCESS-MUG", {"on_hand": 5}, "inventory:write"),
            ("PUT", f"{fulfillment}/settings", {"auto_fulfill": not settings_before["auto_fulfill"]}, "settings:write"),
        ]
        for method, url, body, scope in attempts:
            anonymous = await http.request(method, url, json=body)
            assert anonymous.status_code == 401, anonymous.text
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            assert anonymous.json()["error"]["code"] == "unauthenticated"
            forbidden = await http.request(method, url, json=body, headers=reader)
            assert forbidden.status_code == 403, forbidden.text
            assert forbidden.json()["error"]["code"] == "forbidden" and scope in forbidden.json()["error"]["message"]

        assert (await http.get(f"{fulfillment}/settings", headers=reader)).json() == settings_before
        assert (await http.get(f"{inventory}/stock/ACCESS-MUG", headers=reader)).json()["locations"] == []
        pending = (await http.get(f"{orders}/orders/{order['id']}", headers=reader)).json()
        assert (pending["financial_status"], pending["cancelled_at"]) == ("pending", None)
        paid = await http.post(f"{orders}/orders/{order['id']}/pay", headers=merchant)
        assert paid.status_code == 200, paid.text
        await eventually(lambda: "order.paid" in kafka.types(order["id"], ORDERS_TOPIC))
        emitted = kafka.types(order["id"], ORDERS_TOPIC)
        assert emitted[:2] == ["order.created", "order.paid"] and "order.cancelled" not in emitted


async def test_the_token_subject_is_the_actor_of_every_event_its_call_causes(
    stack: LocalStack, http: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    """Issue 6: every change made over HTTP records the token's subject as `actor` in the events
    it causes (here: paying an order routes it and reserves its stock, in two other services) and
    in the order's timeline."""
    shop = Shop(stack, http)
    sku = shop.sku("ACTOR-MUG")
    location = await shop.location("actor-wh")
    await shop.stock(location, sku, 3)
    alice = {"authorization": f"Bearer {token('orders:read', 'orders:write', sub='alice@shop.example')}"}
    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC, FULFILLMENT_TOPIC, INVENTORY_TOPIC) as kafka:
        order = (await http.post(f"{stack.url('orders')}/orders", json=pending_order(sku), headers=alice)).json()
        assert (await http.post(f"{stack.url('orders')}/orders/{order['id']}/pay", headers=alice)).status_code == 200

        def caused() -> dict[str, Any] | None:
            events = {event["type"]: event for event in kafka.events(order["id"])}
            wanted = ("order.created", "order.paid", "fulfillment_order.created", "inventory.reserved")
            return events if all(kind in events for kind in wanted) else None

        events = await eventually(caused, timeout=30)
        for kind in ("order.created", "order.paid", "fulfillment_order.created", "inventory.reserved"):
            assert events[kind].get("actor") == "alice@shop.example", (kind, events[kind])

    async def on_timeline() -> list[dict[str, Any]] | None:
        timeline = (await shop.order(order["id"]))["timeline"]
        return timeline if {"order.paid", "fulfillment_order.created"} <= {e["type"] for e in timeline} else None

    timeline = await eventually(on_timeline, timeout=30)
    assert {entry["type"]: entry["actor"] for entry in timeline}["order.paid"] == "alice@shop.example"
    assert {entry["type"]: entry["actor"] for entry in timeline}["fulfillment_order.created"] == "alice@shop.example"


async def test_openapi_documents_the_bearer_scheme_and_the_scopes_of_each_operation(
    stack: LocalStack,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        orders = (await http.get(f"{stack.url('orders')}/openapi.json")).json()
        fulfillment = (await http.get(f"{stack.url('fulfillment')}/openapi.json")).json()
        assert (await http.get(f"{stack.url('orders')}/docs")).status_code == 200
    scheme = orders["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert orders["paths"]["/orders/{order_id}/cancel"]["post"]["security"] == [{"bearerAuth": ["orders:write"]}]
    assert orders["paths"]["/orders"]["get"]["security"] == [{"bearerAuth": ["orders:read"]}]
    assert orders["paths"]["/healthz"]["get"]["security"] == []
    assert fulfillment["paths"]["/settings"]["put"]["security"] == [{"bearerAuth": ["settings:write"]}]
    shipping = fulfillment["paths"]["/fulfillment-orders/{fulfillment_order_id}/fulfillments"]["post"]["security"]
    assert shipping == [{"bearerAuth": ["fulfillment:write"]}, {"bearerAuth": ["fulfillment_service:{id}"]}]


async def test_a_key_added_to_the_jwks_works_at_once_and_the_old_one_keeps_working(stack: LocalStack) -> None:
    """Keys rotate without downtime: the running services find a new kid in the JWKS at its first
    token, and tokens of the old key stay valid; a key that is not in the JWKS is refused."""
    assert stack.auth is not None
    url = f"{stack.url('orders')}/orders?limit=1"
    new_key = new_signing_key("ES256")
    claims: dict[str, Any] = {"issuer": stack.auth.issuer, "audience": stack.auth.audience, "scopes": ["orders:read"]}
    async with httpx.AsyncClient(timeout=10) as http:
        stranger = mint_token(new_key, "rotation-key", subject="rotated", ttl_seconds=60, **claims)
        refused = await http.get(url, headers={"authorization": f"Bearer {stranger}"})
        assert refused.status_code == 401 and "does not trust" in refused.json()["error"]["message"]
        kid = stack.auth.trust(new_key, "rotation-key")
        rotated = mint_token(new_key, kid, subject="rotated", ttl_seconds=60, **claims)
        assert (await http.get(url, headers={"authorization": f"Bearer {rotated}"})).status_code == 200
        old = stack.auth.mint("before-rotation", ["orders:read"], 60)
        assert (await http.get(url, headers={"authorization": f"Bearer {old}"})).status_code == 200
