"""The warehouse's day end to end (orders, inventory and fulfillment over HTTP and Kafka): a pack
run by hand and its report, fulfillment orders in packing listed by warehouse status, shipments
with up to 4 parcel ids (a fifth refused with 422), a partial delivery that stays in packing, and
the periodic run moving a short order on once stock arrives."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import Shop, physical, shop, shop_settings

pytestmark = pytest.mark.e2e
__all__ = ["shop", "shop_settings"]  # fixtures


def report_of(reply: Any, order_id: str) -> dict[str, Any]:
    return dict(next(entry for entry in reply.json()["orders"] if entry["order_id"] == order_id))


async def test_a_pack_run_by_hand_then_parcels_and_a_partial_delivery_that_stays_in_packing(shop: Shop) -> None:
    where = await shop.location("packing-wh")
    mug, tea = shop.sku("MUG"), shop.sku("TEA")
    await shop.stock(where, mug, 10)
    await shop.stock(where, tea, 2)
    ready = await shop.paid_order(physical(mug, 2), physical(tea, 1))
    (fo,) = await shop.settle(ready["id"], 1)

    async def teas_left(count: int) -> bool:  # routing sees what the orders' reservations left
        view = await shop.routing_view(tea)
        return any(loc["location_id"] == where and loc["available"] == count for loc in view["locations"])

    await eventually(lambda: teas_left(1), timeout=30)
    short = await shop.paid_order(physical(mug, 1), physical(tea, 3))
    await shop.settle(short["id"], 2)  # the mug at the location, the tea an out-of-stock hold
    # The run reads what is available from routing's stock view, which the last tea's reservation
    # reaches through inventory's level event (another partition than the order's events).
    await eventually(lambda: teas_left(0), timeout=30)

    reply = await shop.post("/pack-runs")
    assert reply.status_code == 201, reply.text
    moved, stopped = report_of(reply, ready["id"]), report_of(reply, short["id"])
    assert (moved["moved"], moved["outcome"], moved["fulfillment_order_ids"]) == (True, "moved", [fo["id"]])
    assert [step["check"] for step in moved["steps"]] == ["draft", "paid", "waiting", "hold", "stock", "pack"]
    # Routing split the tea: 1 reserved at the location, the 2 nobody has on an out-of-stock hold.
    assert stopped["outcome"] == "short"
    assert stopped["message"].startswith(f"line {tea} short at location ")
    assert stopped["message"].endswith(": 2 needed, 0 available")

    in_packing = await shop.fulfillment_orders(ready["id"], warehouse_status="packing")
    assert [(f["id"], f["status"], f["warehouse_status"]) for f in in_packing] == [(fo["id"], "IN_PROGRESS", "packing")]
    listed = await shop.http.get(
        f"{shop.stack.url('fulfillment')}/fulfillment-orders",
        params={"location_id": where, "warehouse_status": "packing"},
    )
    assert [f["id"] for f in listed.json()["items"]] == [fo["id"]]

    lines = {line["sku"]: line["line_item_id"] for line in fo["line_items"]}
    five = {
        "line_items": [{"line_item_id": lines[mug], "quantity": 2}],
        "tracking": {"numbers": ["P1", "P2", "P3", "P4", "P5"]},
    }
    refused = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", five)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["field"] == "tracking.numbers"

    scanned = {"line_items": [{"line_item_id": lines[mug], "quantity": 2}], "parcels": "P1\nP2, P3 P4"}
    partial = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", scanned)
    assert partial.status_code == 201, partial.text
    assert partial.json()["tracking"]["numbers"] == ["P1", "P2", "P3", "P4"]
    assert (partial.json()["fulfillment_order"]["status"], partial.json()["fulfillment_order"]["warehouse_status"]) == (
        "IN_PROGRESS", "packing",
    )  # fmt: skip
    rest = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {"tracking": {"numbers": ["P5"]}})
    assert rest.json()["fulfillment_order"]["warehouse_status"] == "shipped"


async def test_the_periodic_pack_run_moves_the_short_order_on_once_stock_arrives(
    shop: Shop, shop_settings: dict[str, Any]
) -> None:
    where = await shop.location("periodic-wh")
    mug = shop.sku("MUG")
    order = await shop.paid_order(physical(mug, 2))
    await shop.settle(order["id"], 1)  # an out-of-stock hold
    reply = await shop.http.put(f"{shop.stack.url('fulfillment')}/settings", json={"pack_run_interval_seconds": 1})
    assert reply.status_code == 200, reply.text
    await shop.stock(where, mug, 5)

    async def packing() -> bool:
        return [fo["warehouse_status"] for fo in await shop.live(order["id"])] == ["packing"]

    await eventually(packing, timeout=30)
