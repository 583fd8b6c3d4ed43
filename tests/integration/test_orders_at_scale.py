"""The orders service against a real embedded store with thousands of orders (issue 15, Scale):
GET /orders pages through 2,000+ stored orders with keyset pagination, every query it sends is
answered from an index of store.INDEXES, and an order's events cost the store round trips they
need, no more.

The service runs in-process (HTTP through ASGI, Kafka handlers called directly) on a store of
this module's own; every command the service sends is recorded by pymongo command monitoring.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from deploy.auth import LocalAuth
from services.orders import domain, store
from services.orders.api import build_router
from services.orders.app import orders_on
from services.orders.application import Orders
from services.orders.handlers import build_subscriptions
from shared.auth import Authenticator, install
from shared.catalog import FulfillmentChanged, FulfillmentOrderChanged
from shared.events import CloudEvent, new_event
from shared.http import install_error_handlers, refuse_unknown_query_parameters
from shared.messaging import EventSubscriptions
from shared.settings import ServiceSettings
from shared.store import AggregateStore, Document
from tests.conftest import store_server
from tests.unit.test_order_rules import order_json, order_request

STORED = 2_100
MERCHANT_SCOPES = ("orders:read", "orders:write")
START = datetime(2026, 3, 1, tzinfo=UTC)


class Commands(monitoring.CommandListener):
    """Every command sent to the store, as sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Document]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("endSessions", "ping", "hello", "isMaster"):
            self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]


class Service:
    def __init__(
        self, http: httpx.AsyncClient, db: AsyncDatabase[Document], orders: Orders, commands: Commands
    ) -> None:
        self.http = http
        self.db = db
        self.orders = orders
        self.commands = commands
        self.subscriptions: EventSubscriptions = build_subscriptions(orders)

    async def handle(self, event: CloudEvent) -> None:
        await self.subscriptions.handlers[event.type](event)


@pytest.fixture(scope="module")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store of this module's own: the thousands of orders it seeds do not weigh on the others."""
    with store_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


async def create_indexes(db: AsyncDatabase[Document], indexes: dict[str, list[IndexModel]]) -> None:
    """What the runtime does at start with a service's INDEXES."""
    for collection, models in indexes.items():
        await db[collection].create_indexes(models)


def merchant_app(folder: Path, *routers: APIRouter) -> tuple[FastAPI, dict[str, str]]:
    """An app of these routes behind the platform's access control, trusting a key of its own,
    and the headers of a merchant with every merchant scope."""
    local = LocalAuth(folder / "auth").ensure()
    app = FastAPI(dependencies=[Depends(refuse_unknown_query_parameters)])
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    settings: dict[str, Any] = {k.lower(): v for k, v in local.env().items()}
    install(app, Authenticator(ServiceSettings(**settings)))
    return app, {"authorization": f"Bearer {local.mint('merchant', MERCHANT_SCOPES)}"}


@pytest.fixture(scope="module")
async def service(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    commands = Commands()
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[commands])
    db = client["orders"]
    orders = orders_on(db, AggregateStore(db["orders"], lambda *_: None, mapping=store.MAPPING))
    app, headers = merchant_app(tmp_path_factory.mktemp("orders"), build_router(orders))
    await create_indexes(db, store.INDEXES)
    await store.backfill_list_keys(db)
    await seed(db, STORED)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders", headers=headers) as http:
        yield Service(http, db, orders, commands)
    await client.close()


def fulfillment_order_event(order: Document, event_type: str, **changes: Any) -> CloudEvent:
    fo = {
        "id": f"fo-{order['id']}", "order_id": order["id"], "location_id": "wh-1", "status": "OPEN",
        "line_items": [{"line_item_id": line["id"], "sku": line["sku"], "quantity": line["quantity"]}
                       for line in order["line_items"]],
        "created_at": order["created_at"], "updated_at": order["created_at"], **changes,
    }  # fmt: skip
    return new_event("fulfillment", event_type, order["id"],
                     FulfillmentOrderChanged.model_validate({"fulfillment_order": fo}))  # fmt: skip


def stored_order(i: int) -> Document:
    """An order as the service stores it, placed by the domain; three at a time share a creation
    time and some share a deadline, so that the sort needs the order id to break ties."""
    created = (START + timedelta(seconds=i // 3)).isoformat(timespec="microseconds")
    order = domain.place(order_request(financial_status="paid" if i % 4 else "pending"), created, str(uuid.uuid4()))
    placed = order.document
    if i % 5 == 0:
        deadline = (START + timedelta(days=10, hours=i % 7)).isoformat()
        event = fulfillment_order_event(store.MAPPING.dump(placed), "fulfillment_order.created", fulfill_by=deadline)
        incoming = FulfillmentOrderChanged.model_validate(event.data).fulfillment_order
        placed = domain.record_fulfillment_order(placed, event, incoming, created).document
    document = store.MAPPING.dump(placed)
    order_id = document.pop("id")
    return {"_id": order_id, **document, "version": 1, "inbox": {}, "outbox": {}, "outbox_pending": False}


async def seed(db: AsyncDatabase[Document], count: int) -> None:
    """Orders written straight into the store (as if placed over months), 1,000 a round trip."""
    for first in range(0, count, 1000):
        await db["orders"].insert_many([stored_order(i) for i in range(first, min(first + 1000, count))])


async def listed(service: Service, **params: Any) -> dict[str, Any]:
    reply = await service.http.get("/orders", params=params)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def walk(service: Service, **params: Any) -> tuple[list[str], int]:
    """Every page of the listing, following next_cursor; the ids in order, and the pages taken."""
    ids: list[str] = []
    body = await listed(service, **params)
    pages = 1
    while True:
        ids += [order["id"] for order in body["items"]]
        if body["next_cursor"] is None:
            return ids, pages
        body = await listed(service, **params, after=body["next_cursor"])
        pages += 1


async def expected(service: Service, sort: str, **filters: str) -> list[str]:
    """The listing's order, worked out here from every stored order."""
    docs = [doc async for doc in service.db["orders"].find({f: {"$eq": v} for f, v in filters.items()})]
    if sort == "fulfill_by":
        docs.sort(key=lambda d: (d["fulfill_by_sort"], d["created_at"], d["_id"]))
    else:
        docs.sort(key=lambda d: (d["created_at"], d["_id"]), reverse=sort.startswith("-"))
    return [doc["_id"] for doc in docs]


@pytest.mark.parametrize(
    ("sort", "filters"),
    [
        ("fulfill_by", {}),
        ("created_at", {}),
        ("-created_at", {}),
        ("fulfill_by", {"financial_status": "paid"}),
        ("-created_at", {"fulfillment_status": "UNFULFILLED", "financial_status": "pending"}),
    ],
)
async def test_keyset_pagination_returns_every_one_of_thousands_of_orders_once_in_order(
    service: Service, sort: str, filters: dict[str, str]
) -> None:
    want = await expected(service, sort, **filters)
    assert len(want) >= (STORED // 4 if filters else STORED)
    ids, pages = await walk(service, sort=sort, limit=97, **filters)
    assert len(ids) == len(set(ids)), "no order twice"
    assert ids == want, "every order, in the order of the sort"
    assert pages == -(-len(want) // 97)
    assert (await listed(service, sort=sort, limit=1, **filters))["total"] == len(want)


async def test_offset_paging_and_the_total_still_work_beside_the_cursor(service: Service) -> None:
    want = await expected(service, "created_at")
    first, second = (
        await listed(service, sort="created_at", limit=50),
        await listed(service, sort="created_at", limit=50, offset=50),
    )
    assert [o["id"] for o in first["items"] + second["items"]] == want[:100]
    assert first["total"] == second["total"] >= STORED and first["offset"] == 0 and second["offset"] == 50
    by_cursor = await listed(service, sort="created_at", limit=50, after=first["next_cursor"])
    assert by_cursor["items"] == second["items"]
    assert by_cursor["total"] is None, "counted on the first page only: the one cost that grows with the orders"
    shown = first["items"][0]
    assert not {"sort_fulfill_by", "sort_created_at", "fulfill_by_sort", "timeline_notes"} & set(shown)


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"after": "garbage"}, "query.after", "not a cursor this service returned"),
        ({"after": "CURSOR-created_at", "sort": "-created_at"}, "query.after", "keep the sort of the first page"),
        ({"after": "CURSOR-created_at", "sort": "created_at", "offset": 5}, "query.offset", "not both"),
    ],
)
async def test_a_bad_cursor_is_a_422_naming_it(
    service: Service, params: dict[str, Any], field: str, reason: str
) -> None:
    cursor = (await listed(service, sort="created_at", limit=1))["next_cursor"]
    params = {k: cursor if v == "CURSOR-created_at" else v for k, v in params.items()}
    reply = await service.http.get("/orders", params=params)
    assert reply.status_code == 422, reply.text
    [detail] = reply.json()["error"]["details"]
    assert detail["field"] == field and reason in detail["reason"]


def _index_fields() -> list[list[str]]:
    return [list(index.document["key"]) for index in store.INDEXES["orders"]]


def _answered_by_an_index(query: Document, sort: Document) -> bool:
    """The query's shape fits an index of store.INDEXES: `$eq` filters on its leading fields,
    then at most one range, on the field it sorts by (or the sort field right after them)."""
    equal = {f for f, c in query.items() if isinstance(c, dict) and set(c) == {"$eq"}}
    ranged = [f for f, c in query.items() if isinstance(c, dict) and c and set(c) <= {"$gt", "$gte", "$lt", "$lte"}]
    if len(equal) + len(ranged) != len(query) or len(ranged) > 1:
        return False  # bare equality or another operator: not answered from an index on the embedded store
    ordered = [*ranged, *(f for f in sort if f not in ranged)]
    if len(ordered) > 1:
        return False
    return any(
        set(fields[: len(equal)]) == equal and fields[len(equal) : len(equal) + len(ordered)] == ordered
        for fields in _index_fields()
    )


async def test_every_query_of_the_listing_is_answered_from_an_index(service: Service) -> None:
    """Issue 15: "With 20 / 5,070 / 20,000 orders stored: GET /orders?limit=50 takes 31 ms / 1.8 s /
    8.9 s" (a count_documents the store ran in Python over every order, and bare equality filters)."""
    service.commands.sent.clear()
    first = await listed(service, limit=50)
    await listed(service, limit=50, after=first["next_cursor"])
    await listed(service, limit=50, financial_status="paid", sort="-created_at")
    await listed(service, limit=50, fulfillment_status="UNFULFILLED", financial_status="paid", sort="created_at")
    assert service.commands.names() == ["find", "aggregate", "find", "find", "aggregate", "find", "aggregate"]
    for name, command in service.commands.sent:
        if name == "find":
            assert command["limit"] == 51, "a page is bounded"
            assert _answered_by_an_index(command["filter"], command.get("sort", {})), command
        else:
            stages = [next(iter(stage)) for stage in command["pipeline"]]
            assert stages == ["$match", "$count"], f"counted without $group (count_documents): {stages}"
            assert _answered_by_an_index(command["pipeline"][0]["$match"], {}) or not command["pipeline"][0]["$match"]
    plan = await service.db.command(
        "explain", {"find": "orders", "filter": {"financial_status": {"$eq": "paid"}, "sort_created_at": {"$gt": "~"}}}
    )
    assert "USING INDEX" in str(plan["queryPlanner"]["winningPlan"])


async def test_orders_stored_before_the_listing_keys_are_given_them_at_start_and_listed(service: Service) -> None:
    old = stored_order(STORED + 1)
    for key in store.LIST_KEYS.values():
        del old[key]
    old["created_at"] = "2020-01-01T00:00:00.000000+00:00"  # before every other order
    await service.db["orders"].insert_one(old)
    assert await store.backfill_list_keys(service.db) == 1
    assert (await listed(service, sort="created_at", limit=1))["items"][0]["id"] == old["_id"]
    assert await store.backfill_list_keys(service.db) == 0, "nothing left to do: nothing written"


# --- store round trips per order ----------------------------------------------------------------


async def test_an_order_costs_the_round_trips_it_needs(service: Service) -> None:
    """Issue 15: "159 store operations per order ... reads served from the document already in
    hand"; orders made ~20 store commands per order: a read before every write."""
    await service.http.post("/orders", json=order_json())  # the first order makes the sequencer's counter
    service.commands.sent.clear()
    reply = await service.http.post("/orders", json=order_json(financial_status="paid"))
    assert reply.status_code == 201, reply.text
    order = reply.json()
    # Issue 12: an order is numbered once stored (services/orders/numbering.py): one insert, no
    # read first; then the counter claimed (not read: the sequencer knows how its last numbering
    # left it), every search term with the number's (one write), and the order, not read again
    # (its placing hands over the document it stored), written with its number and announcements.
    assert service.commands.names() == ["insert", "update", "update", "update"]
    assert [command.get("update") for name, command in service.commands.sent] == [
        None,
        "order_numbers",
        "order_terms",
        "orders",
    ]

    async def costs(event: CloudEvent) -> list[str]:
        service.commands.sent.clear()
        await service.handle(event)
        return service.commands.names()

    reserved = CloudEvent(source="inventory", type="inventory.reserved", subject=order["id"],
                          data=reservation(order["id"]))  # fmt: skip
    assert await costs(reserved) == ["update"], "a note on the timeline: one write, no read"
    assert await costs(reserved) == ["update", "find"], "a redelivery: the write matches nothing, nothing changes"

    created = fulfillment_order_event(order, "fulfillment_order.created")
    assert await costs(created) == ["find", "update"], "a new snapshot: read, derive the status, write"
    lines = [{"line_item_id": line["id"], "sku": line["sku"], "quantity": line["quantity"],
              "fulfilled_quantity": line["quantity"]} for line in order["line_items"]]  # fmt: skip
    later = (datetime.fromisoformat(order["created_at"]) + timedelta(minutes=1)).isoformat()
    shipped = fulfillment_order_event(order, "fulfillment_order.closed", status="CLOSED", line_items=lines,
                                      updated_at=later)  # fmt: skip
    fulfilled = new_event("fulfillment", "fulfillment.created", order["id"], FulfillmentChanged.model_validate({
        "fulfillment": {"id": "f-1", "order_id": order["id"], "fulfillment_order_id": f"fo-{order['id']}",
                        "location_id": "wh-1", "status": "SUCCESS", "line_items": [], "created_at": later,
                        "updated_at": later},
        "fulfillment_order": shipped.data["fulfillment_order"],
        "order": {k: v for k, v in order.items() if k not in ("timeline", "fulfillment_orders")},
    }))  # fmt: skip
    assert await costs(fulfilled) == ["find", "update"]
    assert await costs(shipped) == ["update"], "the same snapshot again (closed after fulfilled): a note"

    stored = (await service.http.get(f"/orders/{order['id']}")).json()
    assert stored["fulfillment_status"] == "FULFILLED"
    assert [entry["type"] for entry in reversed(stored["timeline"])] == [
        "order.created", "order.paid", "inventory.reserved", "fulfillment_order.created", "fulfillment.created",
        "order.fulfillment_status_changed", "fulfillment_order.closed",
    ]  # fmt: skip


def reservation(order_id: str) -> dict[str, Any]:
    """The data of an inventory reservation event about the order (valid: handlers get it typed)."""
    return {"order_id": order_id, "fulfillment_order_id": f"fo-{order_id}", "location_id": "wh-1", "lines": []}


async def test_an_event_about_an_order_never_seen_is_refused_without_a_trace(service: Service) -> None:
    stranger = str(uuid.uuid4())
    event = CloudEvent(source="inventory", type="inventory.committed", subject=stranger, data=reservation(stranger))
    with pytest.raises(LookupError, match="does not exist"):
        await service.handle(event)
    assert await service.db["orders"].find_one({"_id": stranger}) is None
