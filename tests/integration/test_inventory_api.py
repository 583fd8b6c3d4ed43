"""Inventory's HTTP API in-process against the real embedded store.

No broker is started: the events a request emits stay in the documents' outboxes, which lets
the bad-input tests prove that a refused request wrote nothing at all, not even an event.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from services.inventory.app import COLLECTIONS, InventorySettings, bootstrap, build
from services.inventory.application import Inventory
from shared.catalog import FulfillmentOrderSnapshot
from tests.conftest import auth_settings, bearer

NOW = "2026-01-01T00:00:00.000000+00:00"


class Api:
    def __init__(self, client: httpx.AsyncClient, db: Any) -> None:
        self.client = client
        self.db = db

    async def documents(self) -> dict[str, list[Any]]:
        """Everything the service stored, outboxes included."""
        return {name: [doc async for doc in self.db[name].find({}).sort("_id", 1)] for name in COLLECTIONS}

    async def outbox_events(self, collection: str) -> list[dict[str, Any]]:
        events = [entry for doc in (await self.documents())[collection] for entry in doc.get("outbox", {}).values()]
        return [entry["event"] for entry in sorted(events, key=lambda entry: entry["seq"])]

    def inventory(self) -> Inventory:
        """The same store, for what only events can do (reserving)."""

        def nothing(*_: object) -> None:
            return None

        return bootstrap(self.db, nothing)


@pytest.fixture
async def api(mongo_uri: str, stack: LocalStack) -> AsyncIterator[Api]:
    database = f"inventory_{uuid.uuid4().hex[:12]}"
    settings = InventorySettings(
        mongodb_uri=mongo_uri, mongodb_database=database, kafka_bootstrap_servers="127.0.0.1:9",
        **auth_settings(stack),
    )  # fmt: skip
    runtime, app = build(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inventory", headers=bearer(stack)) as client:
        yield Api(client, runtime.database)
    await runtime.mongo.drop_database(database)
    await runtime.mongo.close()


async def test_locations_are_listed_by_priority_and_announced(api: Api) -> None:
    for location_id, priority in (("store", 2), ("wh-1", 1)):
        reply = await api.client.put(
            f"/locations/{location_id}", json={"name": location_id.upper(), "priority": priority}
        )
        assert reply.status_code == 201, reply.text
    reply = await api.client.put("/locations/3pl", json={"name": "3PL", "fulfillment_service": "acme-fulfillment"})
    assert reply.json() == {"id": "3pl", "name": "3PL", "priority": 3, "active": True,
                            "fulfillment_service": "acme-fulfillment", "workflow": "new"}  # fmt: skip
    updated = await api.client.put("/locations/store", json={"name": "Store", "priority": 2, "active": False})
    assert updated.status_code == 200 and updated.json()["active"] is False

    listed = (await api.client.get("/locations")).json()["items"]
    assert [(loc["id"], loc["priority"]) for loc in listed] == [("wh-1", 1), ("store", 2), ("3pl", 3)]
    assert (await api.client.get("/locations/store")).json()["name"] == "Store"
    events = await api.outbox_events("locations")
    assert [(e["type"], e["subject"]) for e in events] == [
        ("location.updated", "store"), ("location.updated", "wh-1"), ("location.updated", "3pl"),
        ("location.updated", "store"),
    ]  # fmt: skip


async def test_reordering_is_one_request(api: Api) -> None:
    for location_id in ("a", "b", "c"):
        await api.client.put(f"/locations/{location_id}", json={"name": location_id})
    reply = await api.client.put("/locations/priorities", json={"location_ids": ["c", "a"]})
    assert reply.status_code == 200, reply.text
    assert [(loc["id"], loc["priority"]) for loc in reply.json()["items"]] == [("c", 1), ("a", 2), ("b", 3)]
    moved = [(e["subject"], e["data"]["priority"]) for e in (await api.outbox_events("locations"))[3:]]
    assert sorted(moved) == [("a", 2), ("b", 3), ("c", 1)]


async def test_stock_is_set_adjusted_and_shown_per_location(api: Api) -> None:
    await api.client.put("/locations/wh-2", json={"name": "Second", "priority": 2})
    await api.client.put("/locations/wh-1", json={"name": "First", "priority": 1})
    assert (await api.client.put("/stock/wh-2/MUG-1", json={"on_hand": 4})).status_code == 200
    assert (await api.client.put("/stock/wh-1/MUG-1", json={"on_hand": 5})).json() == {
        "location_id": "wh-1", "sku": "MUG-1", "on_hand": 5, "reserved": 0, "available": 5,
    }  # fmt: skip
    reply = await api.client.post("/stock/wh-1/MUG-1/adjustments", json={"delta": -2, "reason": "damaged"})
    assert reply.status_code == 200 and reply.json()["on_hand"] == 3

    body = (await api.client.get("/stock/MUG-1")).json()
    assert body == {"sku": "MUG-1", "locations": [
        {"location_id": "wh-1", "on_hand": 3, "reserved": 0, "available": 3},
        {"location_id": "wh-2", "on_hand": 4, "reserved": 0, "available": 4},
    ]}  # fmt: skip
    assert (await api.client.get("/stock/NOTHING")).json() == {"sku": "NOTHING", "locations": []}
    levels = [(e["subject"], e["data"]["location_id"], e["data"]["on_hand"]) for e in await api.outbox_events("stock")]
    assert sorted(levels) == [("MUG-1", "wh-1", 3), ("MUG-1", "wh-1", 5), ("MUG-1", "wh-2", 4)]


async def test_reservations_are_listed_per_order(api: Api) -> None:
    await api.client.put("/locations/wh-1", json={"name": "First"})
    await api.client.put("/stock/wh-1/MUG-1", json={"on_hand": 5})
    await api.inventory().reserve("e1", fulfillment_order("fo-1", "order-1", 2))
    [record] = (await api.client.get("/reservations", params={"order_id": "order-1"})).json()["items"]
    assert (record["fulfillment_order_id"], record["status"]) == ("fo-1", "reserved")
    assert record["holds"] == [{"location_id": "wh-1", "sku": "MUG-1", "quantity": 2}]
    assert (await api.client.get("/reservations/fo-1")).json()["order_id"] == "order-1"
    assert (await api.client.get("/reservations", params={"order_id": "other"})).json() == {"items": []}


def fulfillment_order(fo_id: str, order_id: str, quantity: int) -> FulfillmentOrderSnapshot:
    return FulfillmentOrderSnapshot.model_validate({
        "id": fo_id, "order_id": order_id, "location_id": "wh-1", "status": "OPEN",
        "line_items": [{"line_item_id": "li-1", "sku": "MUG-1", "quantity": quantity}],
        "created_at": NOW, "updated_at": NOW,
    })  # fmt: skip


# --- bad input: a 4xx that says what is wrong, and nothing written --------------------------

LONG = "x" * 65
BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    # method, path, JSON body, status, the field (or words) the error must name
    ("PUT", "/locations/wh 1", {"name": "A"}, 422, "path.location_id"),
    ("PUT", "/locations/-wh", {"name": "A"}, 422, "path.location_id"),
    ("PUT", f"/locations/{LONG}", {"name": "A"}, 422, "path.location_id"),
    ("PUT", "/locations/wh-9", {}, 422, "name"),
    ("PUT", "/locations/wh-9", {"name": ""}, 422, "name"),
    ("PUT", "/locations/wh-9", {"name": "A", "priority": 0}, 422, "priority"),
    ("PUT", "/locations/wh-9", {"name": "A", "priority": -1}, 422, "priority"),
    ("PUT", "/locations/wh-9", {"name": "A", "priority": "1"}, 422, "priority"),
    ("PUT", "/locations/wh-9", {"name": "A", "priority": 1.5}, 422, "priority"),
    ("PUT", "/locations/wh-9", {"name": "A", "priority": True}, 422, "priority"),
    ("PUT", "/locations/wh-9", {"name": "A", "active": "yes"}, 422, "active"),
    ("PUT", "/locations/wh-9", {"name": "A", "fulfillment_service": "acme 3pl"}, 422, "fulfillment_service"),
    ("PUT", "/locations/wh-9", {"name": "A", "colour": "red"}, 422, "colour"),
    ("PUT", "/locations/wh-9", "not json", 422, "body"),
    ("PUT", "/locations/wh-2", {"name": "B", "priority": 1}, 409, "'wh-1'"),
    ("PUT", "/locations/priorities", {"location_ids": []}, 422, "location_ids"),
    ("PUT", "/locations/priorities", {"location_ids": ["wh-1", "wh-1"]}, 422, "location_ids"),
    ("PUT", "/locations/priorities", {"location_ids": ["wh-2", "ghost"]}, 422, "ghost"),
    ("PUT", "/locations/priorities", {"location_ids": "wh-1"}, 422, "location_ids"),
    ("PUT", "/locations/priorities", {"location_ids": ["bad id"]}, 422, "location_ids.0"),
    ("GET", "/locations/ghost", None, 404, "ghost"),
    ("GET", "/locations/bad%20id", None, 422, "path.location_id"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": -1}, 422, "on_hand"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": "5"}, 422, "on_hand"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": 5.5}, 422, "on_hand"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": True}, 422, "on_hand"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": None}, 422, "on_hand"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": 10**12}, 422, "on_hand"),
    ("PUT", "/stock/wh-1/MUG-1", {}, 422, "on_hand"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": 5, "reserved": 0}, 422, "reserved"),
    ("PUT", "/stock/wh-1/MUG 1", {"on_hand": 5}, 422, "path.sku"),
    ("PUT", f"/stock/wh-1/{LONG}", {"on_hand": 5}, 422, "path.sku"),
    ("PUT", "/stock/ghost/MUG-1", {"on_hand": 5}, 404, "ghost"),
    ("PUT", "/stock/wh-1/MUG-1", {"on_hand": 1}, 409, "below the 2 units reserved"),
    ("POST", "/stock/wh-1/MUG-1/adjustments", {"delta": 0, "reason": "count"}, 422, "delta"),
    ("POST", "/stock/wh-1/MUG-1/adjustments", {"delta": "2", "reason": "count"}, 422, "delta"),
    ("POST", "/stock/wh-1/MUG-1/adjustments", {"delta": 10**10, "reason": "count"}, 422, "delta"),
    ("POST", "/stock/wh-1/MUG-1/adjustments", {"delta": 2}, 422, "reason"),
    ("POST", "/stock/wh-1/MUG-1/adjustments", {"delta": 2, "reason": "  "}, 422, "reason"),
    ("POST", "/stock/wh-1/MUG-1/adjustments", {"delta": 2, "reason": "r" * 256}, 422, "reason"),
    ("POST", "/stock/ghost/MUG-1/adjustments", {"delta": 2, "reason": "count"}, 404, "ghost"),
    ("POST", "/stock/wh-1/MUG-1/adjustments", {"delta": -4, "reason": "damaged"}, 409, "below the 2 units reserved"),
    ("POST", "/stock/wh-1/NEW-1/adjustments", {"delta": -1, "reason": "damaged"}, 409, "on_hand -1"),
    ("GET", "/stock/bad%20sku", None, 422, "path.sku"),
    ("GET", "/reservations", None, 422, "query.order_id"),
    ("GET", f"/reservations?order_id={'o' * 129}", None, 422, "query.order_id"),
    ("GET", "/reservations/ghost", None, 404, "ghost"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "named"), BAD_REQUESTS)
async def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(
    api: Api, method: str, path: str, body: Any, status: int, named: str
) -> None:
    await api.client.put("/locations/wh-1", json={"name": "First", "priority": 1})
    await api.client.put("/locations/wh-2", json={"name": "Second", "priority": 2})
    await api.client.put("/stock/wh-1/MUG-1", json={"on_hand": 5})
    await api.inventory().reserve("e1", fulfillment_order("fo-1", "order-1", 2))
    before = await api.documents()

    if isinstance(body, str):
        reply = await api.client.request(method, path, content=body, headers={"content-type": "application/json"})
    else:
        reply = await api.client.request(method, path, json=body)

    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] in {422: ["invalid_request"], 404: ["not_found"], 409: ["conflict"]}[status]
    assert named in error["message"] + str(error["details"]), error
    assert await api.documents() == before
