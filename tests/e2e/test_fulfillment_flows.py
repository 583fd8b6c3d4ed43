"""Fulfillment end to end: orders, inventory and fulfillment over HTTP and Kafka.

Each test uses its own skus and locations (fresh ids), so tests do not see each other's stock.
Locations are created without a priority: inventory puts each new one last, so the order of
creation is the priority order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

FULFILLMENT_TOPIC = "fulfillment.events.v1"


class Shop:
    """The merchant's and the buyer's side of the stack, in the words of the flows."""

    def __init__(self, stack: LocalStack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http
        self.tag = uuid.uuid4().hex[:8]

    def sku(self, name: str) -> str:
        return f"{name}-{self.tag}"

    async def location(self, name: str, fulfillment_service: str | None = None) -> str:
        location_id = f"{name}-{self.tag}"
        body = {"name": name, "active": True, "fulfillment_service": fulfillment_service}
        reply = await self.http.put(f"{self.stack.url('inventory')}/locations/{location_id}", json=body)
        assert reply.status_code in (200, 201), reply.text
        await eventually(lambda: self._routing_knows(location_id), timeout=30)
        return location_id

    async def stock(self, location_id: str, sku: str, on_hand: int) -> None:
        reply = await self.http.put(
            f"{self.stack.url('inventory')}/stock/{location_id}/{sku}", json={"on_hand": on_hand}
        )
        assert reply.status_code == 200, reply.text

        async def routing_sees_it() -> bool:
            # Routing has caught up with inventory: the same available units at that location.
            # (Not `available == on_hand`: an order waiting for this stock may take it at once.)
            level = (await self.levels(sku)).get(location_id)
            if level is None or level["on_hand"] != on_hand:
                return False
            view = await self.routing_view(sku)
            return any(
                loc["location_id"] == location_id and loc["available"] == level["available"]
                for loc in view["locations"]
            )

        await eventually(routing_sees_it, timeout=30)

    async def routing_view(self, sku: str) -> dict[str, Any]:
        reply = await self.http.get(f"{self.stack.url('fulfillment')}/routing/stock/{sku}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    async def _routing_knows(self, location_id: str) -> bool:
        view = await self.routing_view("anything")
        return any(loc["location_id"] == location_id for loc in view["locations"])

    async def levels(self, sku: str) -> dict[str, dict[str, int]]:
        reply = await self.http.get(f"{self.stack.url('inventory')}/stock/{sku}")
        assert reply.status_code == 200, reply.text
        return {level["location_id"]: level for level in reply.json()["locations"]}

    async def paid_order(self, *lines: dict[str, Any], post_purchase_pending: bool = False) -> dict[str, Any]:
        body = {
            "customer": {"email": "buyer@example.com", "name": "Buyer"},
            "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122", "country_code": "SE"},
            "currency": "SEK", "financial_status": "paid", "post_purchase_pending": post_purchase_pending,
            "line_items": list(lines),
        }  # fmt: skip
        reply = await self.http.post(f"{self.stack.url('orders')}/orders", json=body)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    async def order(self, order_id: str) -> dict[str, Any]:
        return dict((await self.http.get(f"{self.stack.url('orders')}/orders/{order_id}")).json())

    async def fulfillment_orders(self, order_id: str, **filters: str) -> list[dict[str, Any]]:
        reply = await self.http.get(
            f"{self.stack.url('fulfillment')}/fulfillment-orders", params={"order_id": order_id, **filters}
        )
        assert reply.status_code == 200, reply.text
        return list(reply.json()["items"])

    async def live(self, order_id: str) -> list[dict[str, Any]]:
        return [fo for fo in await self.fulfillment_orders(order_id) if fo["status"] != "CANCELLED"]

    async def settle(self, order_id: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Wait until the order has `count` live fulfillment orders, none waiting for inventory."""

        async def settled() -> list[dict[str, Any]] | None:
            live = await self.live(order_id)
            if len(live) == count and all(fo["reservation_status"] != "PENDING" for fo in live):
                return live
            return None

        return list(await eventually(settled, timeout=timeout))

    async def rerouted(self, order_id: str, held_id: str, timeout: float = 30) -> dict[str, Any]:
        """Wait until the out-of-stock hold `held_id` gave way to one fulfillment order, settled.
        Routing records the stock, then re-routes what waits for it: until then the hold stands,
        settled, and `settle` returns it (a test that waited so failed 1 full run in 5)."""

        async def replaced() -> dict[str, Any] | None:
            live = await self.live(order_id)
            if len(live) == 1 and live[0]["id"] != held_id and live[0]["reservation_status"] != "PENDING":
                return live[0]
            return None

        return dict(await eventually(replaced, timeout=timeout))

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(f"{self.stack.url('fulfillment')}{path}", json=body)

    async def display_status(self, order_id: str, wanted: str) -> None:
        async def shows() -> bool:
            return bool((await self.order(order_id))["fulfillment_status"] == wanted)

        await eventually(shows, timeout=30)


def physical(sku: str, quantity: int) -> dict[str, Any]:
    return {"sku": sku, "title": sku, "quantity": quantity, "unit_price": "10.00"}


def digital(sku: str) -> dict[str, Any]:
    return {"sku": sku, "title": sku, "quantity": 1, "unit_price": "5.00", "requires_shipping": False,
            "digital_asset_url": f"https://files.example.com/{sku}.pdf"}  # fmt: skip


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


@pytest.fixture
async def shop_settings(shop: Shop) -> AsyncIterator[dict[str, Any]]:
    """Change the shop settings in a test; they are put back afterwards."""
    url = f"{shop.stack.url('fulfillment')}/settings"
    before = (await shop.http.get(url)).json()
    yield before
    assert (await shop.http.put(url, json=before)).status_code == 200


async def test_digital_order_is_fulfilled_as_soon_as_it_is_paid(shop: Shop) -> None:
    async with TopicReader(shop.stack.kafka_bootstrap, FULFILLMENT_TOPIC) as kafka:
        order = await shop.paid_order(digital(shop.sku("EBOOK")))
        (fo,) = await shop.settle(order["id"], 1)
        assert fo["status"] == "CLOSED" and fo["location_id"] is None
        (fulfillment,) = fo["fulfillments"]
        assert fulfillment["line_items"][0]["digital_asset_url"] == f"https://files.example.com/{shop.sku('EBOOK')}.pdf"
        await shop.display_status(order["id"], "FULFILLED")
        await eventually(lambda: "fulfillment_order.closed" in kafka.types(order["id"], FULFILLMENT_TOPIC))
        assert kafka.types(order["id"], FULFILLMENT_TOPIC) == [
            "fulfillment_order.created", "fulfillment.created", "fulfillment_order.closed",
        ]  # fmt: skip


async def test_mixed_order_digital_lines_ship_at_once_the_rest_waits_for_the_merchant(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    await shop.stock(warehouse, shop.sku("MUG"), 5)
    order = await shop.paid_order(digital(shop.sku("EBOOK")), physical(shop.sku("MUG"), 1))
    fos = await shop.settle(order["id"], 2)
    by_kind = {fo["kind"]: fo for fo in fos}
    assert by_kind["digital"]["status"] == "CLOSED"
    assert by_kind["shipping"]["status"] == "OPEN" and by_kind["shipping"]["location_id"] == warehouse
    await shop.display_status(order["id"], "PARTIALLY_FULFILLED")


async def test_physical_order_in_two_partial_shipments_with_tracking(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 5)
    async with TopicReader(shop.stack.kafka_bootstrap, FULFILLMENT_TOPIC) as kafka:
        order = await shop.paid_order(physical(mug, 3))
        (fo,) = await shop.settle(order["id"], 1)
        assert fo["status"] == "OPEN" and fo["reservation_status"] == "RESERVED"
        assert "highest-priority active location with stock for every line" in fo["routing_reason"]
        line_id = fo["line_items"][0]["line_item_id"]
        assert (await shop.levels(mug))[warehouse]["reserved"] == 3

        too_many = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments",
                                   {"line_items": [{"line_item_id": line_id, "quantity": 4}]})  # fmt: skip
        assert too_many.status_code == 422
        assert too_many.json()["error"]["details"][0]["field"] == "line_items.0.quantity"
        unknown = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments",
                                  {"line_items": [{"line_item_id": "nope", "quantity": 1}]})  # fmt: skip
        assert unknown.status_code == 422
        assert unknown.json()["error"]["details"][0]["field"] == "line_items.0.line_item_id"

        first = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {
            "line_items": [{"line_item_id": line_id, "quantity": 1}],
            "tracking": {"numbers": ["PN123"], "company": "PostNord", "url": "https://track.example/PN123"},
            "notify_customer": True,
        })  # fmt: skip
        assert first.status_code == 201, first.text
        assert first.json()["status"] == "SUCCESS"
        assert first.json()["tracking"] == {"numbers": ["PN123"], "company": "PostNord",
                                            "urls": ["https://track.example/PN123"]}  # fmt: skip
        assert first.json()["fulfillment_order"]["status"] == "IN_PROGRESS"
        await shop.display_status(order["id"], "PARTIALLY_FULFILLED")

        second = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments",
                                 {"tracking": {"numbers": ["DHL1", "DHL2"], "company": "DHL"}})  # fmt: skip
        assert second.status_code == 201, second.text
        assert second.json()["line_items"][0]["quantity"] == 2
        assert second.json()["fulfillment_order"]["status"] == "CLOSED"
        await shop.display_status(order["id"], "FULFILLED")

        changed = await shop.post(f"/fulfillments/{first.json()['id']}/tracking",
                                  {"numbers": ["PN999"], "company": "PostNord", "notify_customer": True})  # fmt: skip
        assert changed.status_code == 200 and changed.json()["tracking"]["numbers"] == ["PN999"]

        async def committed() -> bool:
            level = (await shop.levels(mug))[warehouse]
            return (level["on_hand"], level["reserved"], level["available"]) == (2, 0, 2)

        await eventually(committed, timeout=30)
        await eventually(lambda: "fulfillment.tracking_updated" in kafka.types(order["id"], FULFILLMENT_TOPIC))
        assert kafka.types(order["id"], FULFILLMENT_TOPIC) == [
            "fulfillment_order.created", "fulfillment.created", "fulfillment.created", "fulfillment_order.closed",
            "fulfillment.tracking_updated",
        ]  # fmt: skip
        closed_once = (await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})).json()
        assert closed_once["error"]["code"] == "conflict" and "CLOSED" in closed_once["error"]["message"]


async def test_split_across_two_locations_when_neither_has_everything(shop: Shop) -> None:
    north, south = await shop.location("north"), await shop.location("south")
    mug, cap = shop.sku("MUG"), shop.sku("CAP")
    await shop.stock(north, mug, 2)
    await shop.stock(south, cap, 1)
    await shop.stock(south, mug, 1)
    order = await shop.paid_order(physical(mug, 2), physical(cap, 1))
    fos = await shop.settle(order["id"], 2)
    placed = {fo["location_id"]: [(li["sku"], li["quantity"]) for li in fo["line_items"]] for fo in fos}
    assert placed == {north: [(mug, 2)], south: [(cap, 1)]}
    assert all("split over 2 location(s)" in fo["routing_reason"] for fo in fos)
    assert all(fo["status"] == "OPEN" and fo["reservation_status"] == "RESERVED" for fo in fos)
    assert (await shop.levels(mug))[north]["reserved"] == 2
    assert (await shop.levels(cap))[south]["reserved"] == 1
    assert (await shop.levels(mug))[south]["reserved"] == 0


async def test_out_of_stock_hold_reroutes_and_opens_when_stock_arrives(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    order = await shop.paid_order(physical(mug, 2))
    (held,) = await shop.settle(order["id"], 1)
    assert (held["status"], held["location_id"]) == ("ON_HOLD", None)
    assert [hold["reason"] for hold in held["holds"]] == ["INVENTORY_OUT_OF_STOCK"]
    assert "no active location has stock for 2 x " + mug in held["holds"][0]["note"]
    await shop.display_status(order["id"], "ON_HOLD")
    refused = await shop.post(f"/fulfillment-orders/{held['id']}/fulfillments", {})
    assert refused.status_code == 409

    await shop.stock(warehouse, mug, 5)
    opened = await shop.rerouted(order["id"], held["id"])
    assert (opened["status"], opened["location_id"], opened["reservation_status"]) == ("OPEN", warehouse, "RESERVED")
    assert opened["line_items"][0]["quantity"] == 2
    old = (await shop.http.get(f"{shop.stack.url('fulfillment')}/fulfillment-orders/{held['id']}")).json()
    assert old["status"] == "CANCELLED" and old["replaced_by"] == [opened["id"]]
    assert (await shop.levels(mug))[warehouse]["reserved"] == 2
    await shop.display_status(order["id"], "UNFULFILLED")


async def test_hold_refuses_fulfilment_until_released(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    await shop.stock(warehouse, shop.sku("MUG"), 3)
    order = await shop.paid_order(physical(shop.sku("MUG"), 1))
    (fo,) = await shop.settle(order["id"], 1)
    held = await shop.post(f"/fulfillment-orders/{fo['id']}/hold", {"reason": "HIGH_RISK_OF_FRAUD", "note": "check"})
    assert held.status_code == 200 and held.json()["status"] == "ON_HOLD"
    assert held.json()["holds"][0]["reason"] == "HIGH_RISK_OF_FRAUD"
    await shop.display_status(order["id"], "ON_HOLD")

    refused = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})
    assert refused.status_code == 409
    assert "ON_HOLD (HIGH_RISK_OF_FRAUD): release the hold first" in refused.json()["error"]["message"]
    assert (await shop.post(f"/fulfillment-orders/{fo['id']}/hold", {"reason": "NOT_A_REASON"})).status_code == 422

    released = await shop.post(f"/fulfillment-orders/{fo['id']}/release-hold")
    assert released.status_code == 200 and released.json()["status"] == "OPEN"
    again = await shop.post(f"/fulfillment-orders/{fo['id']}/release-hold")
    assert again.status_code == 409 and "not on hold" in again.json()["error"]["message"]
    shipped = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})
    assert shipped.status_code == 201 and shipped.json()["fulfillment_order"]["status"] == "CLOSED"
    await shop.display_status(order["id"], "FULFILLED")


async def test_cancel_a_fulfillment_puts_its_stock_back_to_reserved_after_the_label_is_voided(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 5)
    order = await shop.paid_order(physical(mug, 2))
    (fo,) = await shop.settle(order["id"], 1)
    shipped = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {"label": "PURCHASED"})
    assert shipped.status_code == 201, shipped.text
    fulfillment_id = shipped.json()["id"]

    async def level_is(on_hand: int, reserved: int) -> bool:
        level = (await shop.levels(mug))[warehouse]
        return (level["on_hand"], level["reserved"]) == (on_hand, reserved)

    await eventually(lambda: level_is(3, 0), timeout=30)
    refused = await shop.post(f"/fulfillments/{fulfillment_id}/cancel")
    assert refused.status_code == 409 and "void the label" in refused.json()["error"]["message"]
    voided = await shop.post(f"/fulfillments/{fulfillment_id}/void-label")
    assert voided.status_code == 200 and voided.json()["label_status"] == "VOIDED"
    cancelled = await shop.post(f"/fulfillments/{fulfillment_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["fulfillment_order"]["status"] == "OPEN"
    assert cancelled.json()["fulfillment_order"]["line_items"][0]["fulfilled_quantity"] == 0
    await eventually(lambda: level_is(5, 2), timeout=30)
    await shop.display_status(order["id"], "UNFULFILLED")
    assert (await shop.post(f"/fulfillments/{fulfillment_id}/cancel")).status_code == 409
    assert (await shop.post("/fulfillments/no-such-fulfillment/cancel")).status_code == 404


async def test_post_purchase_hold_keeps_stock_reserved_and_the_sweep_releases_it(
    shop: Shop, shop_settings: dict[str, Any]
) -> None:
    url = f"{shop.stack.url('fulfillment')}/settings"
    changed = await shop.http.put(url, json={"post_purchase_hold_seconds": 6, "sweep_interval_seconds": 1})
    assert changed.status_code == 200 and changed.json()["post_purchase_hold_seconds"] == 6
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 4)
    async with TopicReader(shop.stack.kafka_bootstrap, FULFILLMENT_TOPIC) as kafka:
        order = await shop.paid_order(physical(mug, 1), post_purchase_pending=True)
        (fo,) = await eventually(lambda: shop.live(order["id"]), timeout=30)
        refused = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})
        assert refused.status_code == 409 and "POST_PURCHASE_UPSELL" in refused.json()["error"]["message"]
        created = (await eventually(lambda: kafka.events(order["id"], FULFILLMENT_TOPIC)))[0]
        assert created["type"] == "fulfillment_order.created"
        assert created["data"]["fulfillment_order"]["status"] == "ON_HOLD"
        assert created["data"]["fulfillment_order"]["holds"][0]["reason"] == "POST_PURCHASE_UPSELL"

        async def reserved() -> bool:
            return bool((await shop.levels(mug))[warehouse]["reserved"] == 1)

        await eventually(reserved, timeout=30)  # stock is reserved all the same

        def released_by_the_sweep() -> list[dict[str, Any]]:
            return [
                e
                for e in kafka.events(order["id"], FULFILLMENT_TOPIC)
                if e["type"] == "fulfillment_order.hold_released"
            ]

        (released,) = await eventually(released_by_the_sweep, timeout=30)
        assert released["data"]["reason"] == "the post-purchase hold expired"
        assert released["data"]["fulfillment_order"]["status"] == "OPEN"
    shipped = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})
    assert shipped.status_code == 201, shipped.text


async def test_scheduled_fulfillment_order_is_opened_by_the_sweep_when_its_time_comes(
    shop: Shop, shop_settings: dict[str, Any]
) -> None:
    url = f"{shop.stack.url('fulfillment')}/settings"
    assert (await shop.http.put(url, json={"sweep_interval_seconds": 1})).status_code == 200
    warehouse = await shop.location("warehouse")
    await shop.stock(warehouse, shop.sku("MUG"), 2)
    order = await shop.paid_order(physical(shop.sku("MUG"), 1))
    (fo,) = await shop.settle(order["id"], 1)
    past = await shop.post(f"/fulfillment-orders/{fo['id']}/schedule", {"fulfill_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 422 and past.json()["error"]["details"][0]["field"] == "fulfill_at"
    # Long enough for orders to show SCHEDULED before the sweep opens it, on a loaded machine too.
    soon = (datetime.now(UTC) + timedelta(seconds=8)).isoformat()
    scheduled = await shop.post(f"/fulfillment-orders/{fo['id']}/schedule", {"fulfill_at": soon})
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "SCHEDULED"
    refused = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})
    assert refused.status_code == 409 and "SCHEDULED" in refused.json()["error"]["message"]
    await shop.display_status(order["id"], "SCHEDULED")

    async def opened() -> bool:
        (current,) = await shop.live(order["id"])
        return bool(current["status"] == "OPEN")

    await eventually(opened, timeout=30)
    assert (await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})).status_code == 201


async def test_post_purchase_hold_released_when_the_buyer_finishes_the_offer(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 4)
    order = await shop.paid_order(physical(mug, 1), digital(shop.sku("EBOOK")), post_purchase_pending=True)
    fos = await shop.settle(order["id"], 2)
    assert all(fo["status"] == "ON_HOLD" for fo in fos)
    await shop.display_status(order["id"], "PENDING")
    reply = await shop.http.post(f"{shop.stack.url('orders')}/orders/{order['id']}/post-purchase/complete")
    assert reply.status_code == 200, reply.text

    async def statuses() -> dict[str, str]:
        return {fo["kind"]: fo["status"] for fo in await shop.live(order["id"])}

    await eventually(lambda: _equals(statuses(), {"digital": "CLOSED", "shipping": "OPEN"}), timeout=30)


async def test_cancelling_the_order_cancels_open_fulfillment_orders_and_releases_stock(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 3)
    order = await shop.paid_order(physical(mug, 2))
    await shop.settle(order["id"], 1)
    assert (await shop.levels(mug))[warehouse]["reserved"] == 2
    cancel = {"refund": "now", "restock": True, "notify_customer": False, "reason": "customer"}
    reply = await shop.http.post(f"{shop.stack.url('orders')}/orders/{order['id']}/cancel", json=cancel)
    assert reply.status_code == 200, reply.text

    async def cancelled() -> bool:
        fos = await shop.fulfillment_orders(order["id"])
        return all(fo["status"] == "CANCELLED" for fo in fos)

    await eventually(cancelled, timeout=30)

    async def released() -> bool:
        return bool((await shop.levels(mug))[warehouse]["reserved"] == 0)

    await eventually(released, timeout=30)


async def test_move_to_another_location(shop: Shop) -> None:
    first, second = await shop.location("first"), await shop.location("second")
    mug = shop.sku("MUG")
    await shop.stock(first, mug, 2)
    await shop.stock(second, mug, 2)
    order = await shop.paid_order(physical(mug, 2))
    (fo,) = await shop.settle(order["id"], 1)
    assert fo["location_id"] == first
    unknown = await shop.post(f"/fulfillment-orders/{fo['id']}/move", {"location_id": "nowhere"})
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "location_id"
    same = await shop.post(f"/fulfillment-orders/{fo['id']}/move", {"location_id": first})
    assert same.status_code == 409
    moved = await shop.post(f"/fulfillment-orders/{fo['id']}/move", {"location_id": second})
    assert moved.status_code == 200, moved.text
    assert moved.json()["location_id"] == second

    async def reserved_at_second() -> bool:
        levels = await shop.levels(mug)
        return bool(levels[first]["reserved"] == 0 and levels[second]["reserved"] == 2)

    await eventually(reserved_at_second, timeout=30)
    (after,) = await shop.settle(order["id"], 1)
    assert after["reservation_status"] == "RESERVED"


async def test_fulfill_by_sorts_the_list_and_filters_work(shop: Shop) -> None:
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 10)
    orders = [await shop.paid_order(physical(mug, 1)) for _ in range(3)]
    fos = [(await shop.settle(order["id"], 1))[0] for order in orders]
    late, soon = "2031-06-01T12:00:00+02:00", "2031-01-01T00:00:00Z"
    assert (await shop.post(f"/fulfillment-orders/{fos[0]['id']}/fulfill-by", {"fulfill_by": late})).status_code == 200
    reply = await shop.post(f"/fulfillment-orders/{fos[1]['id']}/fulfill-by", {"fulfill_by": soon})
    assert reply.status_code == 200 and reply.json()["fulfill_by"] == "2031-01-01T00:00:00.000000+00:00"
    bad = await shop.post(f"/fulfillment-orders/{fos[2]['id']}/fulfill-by", {"fulfill_by": "next tuesday"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "fulfill_by"
    listed = await shop.http.get(f"{shop.stack.url('fulfillment')}/fulfillment-orders",
                                 params={"location_id": warehouse, "status": "OPEN"})  # fmt: skip
    assert [fo["id"] for fo in listed.json()["items"]] == [fos[1]["id"], fos[0]["id"], fos[2]["id"]]
    assert (await shop.http.get(f"{shop.stack.url('fulfillment')}/fulfillment-orders",
                                params={"status": "NOPE"})).status_code == 422  # fmt: skip
    cleared = await shop.post(f"/fulfillment-orders/{fos[1]['id']}/fulfill-by", {"fulfill_by": None})
    assert cleared.status_code == 200 and cleared.json()["fulfill_by"] is None
    assert (await shop.http.get(f"{shop.stack.url('fulfillment')}/fulfillment-orders/nope")).status_code == 404


async def test_automatic_shop_fulfils_at_once_or_submits_to_the_fulfillment_service(
    shop: Shop, shop_settings: dict[str, Any]
) -> None:
    own, third_party = await shop.location("own"), await shop.location("shipco", fulfillment_service="shipco")
    mug, cap = shop.sku("MUG"), shop.sku("CAP")
    await shop.stock(own, mug, 2)
    await shop.stock(third_party, cap, 2)
    assert (await shop.http.put(f"{shop.stack.url('fulfillment')}/settings", json={"auto_fulfill": True})).json()[
        "auto_fulfill"
    ]
    async with TopicReader(shop.stack.kafka_bootstrap, FULFILLMENT_TOPIC, "fulfillment.requests.v1") as kafka:
        mine = await shop.paid_order(physical(mug, 1))
        theirs = await shop.paid_order(physical(cap, 1))
        await shop.display_status(mine["id"], "FULFILLED")

        async def submitted() -> dict[str, Any] | None:
            live = await shop.live(theirs["id"])  # none until the order is routed
            return live[0] if len(live) == 1 and live[0]["request_status"] == "SUBMITTED" else None

        fo = await eventually(submitted, timeout=30)
        assert fo["status"] == "OPEN" and fo["location_id"] == third_party
        await eventually(lambda: "fulfillment_request.submitted" in kafka.types(theirs["id"], FULFILLMENT_TOPIC))
        requests = await eventually(lambda: kafka.events("shipco", "fulfillment.requests.v1"))
        assert any(r["data"]["fulfillment_order"]["id"] == fo["id"] for r in requests)


async def test_concurrent_orders_reserve_exactly_the_stock_and_hold_the_rest(shop: Shop) -> None:
    first, second = await shop.location("first"), await shop.location("second")
    mug = shop.sku("MUG")
    await shop.stock(first, mug, 6)
    await shop.stock(second, mug, 4)
    orders = await asyncio.gather(*(shop.paid_order(physical(mug, 1)) for _ in range(40)))

    async def settled() -> list[dict[str, Any]] | None:
        per_order = await asyncio.gather(*(shop.live(order["id"]) for order in orders))
        live = [fo for fos in per_order for fo in fos]
        if len(live) == 40 and all(fo["reservation_status"] != "PENDING" for fo in live):
            return live
        return None

    live = await eventually(settled, timeout=120, interval=0.5)
    located = [fo for fo in live if fo["location_id"] is not None]
    held = [fo for fo in live if fo["status"] == "ON_HOLD"]
    assert len(located) == 10 and len(held) == 30
    assert all(fo["reservation_status"] == "RESERVED" and fo["status"] == "OPEN" for fo in located)
    assert all(fo["holds"][0]["reason"] == "INVENTORY_OUT_OF_STOCK" and fo["location_id"] is None for fo in held)
    assert sorted(fo["location_id"] for fo in located) == [first] * 6 + [second] * 4
    levels = await shop.levels(mug)
    assert (levels[first]["reserved"], levels[second]["reserved"]) == (6, 4)
    assert levels[first]["available"] == levels[second]["available"] == 0


async def _equals(probe: Any, wanted: Any) -> bool:
    return bool(await probe == wanted)
