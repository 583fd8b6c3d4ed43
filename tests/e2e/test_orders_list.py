"""GET /orders: filters by financial and fulfillment status, sorts by fulfill-by deadline
(orders without one last) or creation time, and pages with limit/offset."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.e2e.test_orders_flows import CANCEL, create, fulfillment_order_event

pytestmark = pytest.mark.e2e


async def list_orders(http: httpx.AsyncClient, stack: LocalStack, **params: Any) -> dict[str, Any]:
    reply = await http.get(stack.url("orders") + "/orders", params=params)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def all_ids(http: httpx.AsyncClient, stack: LocalStack, **params: Any) -> list[str]:
    return [o["id"] for o in (await list_orders(http, stack, limit=250, **params))["items"]]


async def test_sorted_by_earliest_fulfill_by_deadline_with_none_last(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    # Deadlines far in the past sort these before any order another test gave a real deadline.
    late, early, middle, none = [await create(http, stack) for _ in range(4)]
    deadlines = {late["id"]: "2001-03-01T00:00:00Z", early["id"]: "2001-01-01T00:00:00Z",
                 middle["id"]: "2001-02-01T00:00:00+01:00"}  # fmt: skip
    for order in (late, early, middle):
        await fulfillment_order_event(stack, order, "fulfillment_order.fulfill_by_changed",
                                      fulfill_by=deadlines[order["id"]])  # fmt: skip
    # The earliest deadline is the earliest of the order's open fulfillment orders.
    await fulfillment_order_event(
        stack, late, "fulfillment_order.fulfill_by_changed", fulfill_by="2001-04-01T00:00:00Z"
    )

    async def deadlines_recorded() -> bool:
        ids = await all_ids(http, stack)
        return ids[:3] == [early["id"], middle["id"], late["id"]]

    await eventually(deadlines_recorded)
    shown = {o["id"]: o for o in (await list_orders(http, stack, limit=3))["items"]}
    assert shown[early["id"]]["fulfill_by"] == "2001-01-01T00:00:00.000000+00:00"
    assert shown[middle["id"]]["fulfill_by"] == "2001-01-31T23:00:00.000000+00:00"
    assert shown[late["id"]]["fulfill_by"] == "2001-03-01T00:00:00.000000+00:00"
    assert "fulfill_by_sort" not in shown[early["id"]]

    everything = await list_orders(http, stack, sort="fulfill_by", limit=250)
    ordered = [o["fulfill_by"] for o in everything["items"]]
    with_deadline = [d for d in ordered if d is not None]
    assert ordered == [*with_deadline, *[None] * (len(ordered) - len(with_deadline))], "no deadline sorts last"
    assert with_deadline == sorted(with_deadline)
    assert none["id"] in [o["id"] for o in everything["items"] if o["fulfill_by"] is None]


async def test_sorted_by_creation_time_both_ways(stack: LocalStack, http: httpx.AsyncClient) -> None:
    first, second = await create(http, stack), await create(http, stack)
    oldest_first = await all_ids(http, stack, sort="created_at")
    newest_first = await all_ids(http, stack, sort="-created_at")
    assert oldest_first.index(first["id"]) < oldest_first.index(second["id"])
    assert newest_first == list(reversed(oldest_first))


async def test_paging_walks_every_order_once(stack: LocalStack, http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create(http, stack)
    everything = await list_orders(http, stack, sort="created_at", limit=250)
    total = everything["total"]
    assert total == len(everything["items"]) >= 3

    pages: list[str] = []
    for offset in range(0, total, 2):
        page = await list_orders(http, stack, sort="created_at", limit=2, offset=offset)
        assert (page["limit"], page["offset"], page["total"]) == (2, offset, total)
        assert len(page["items"]) == min(2, total - offset)
        pages += [o["id"] for o in page["items"]]
    assert pages == [o["id"] for o in everything["items"]]
    assert (await list_orders(http, stack, offset=total))["items"] == []


async def test_filters_by_financial_and_fulfillment_status(stack: LocalStack, http: httpx.AsyncClient) -> None:
    pending, paid, voided = await create(http, stack), await create(http, stack, paid=True), await create(http, stack)
    assert (await http.post(f"{stack.url('orders')}/orders/{voided['id']}/cancel", json=CANCEL)).status_code == 200
    held = await create(http, stack)
    await fulfillment_order_event(stack, held, "fulfillment_order.placed_on_hold", f"e2e-{uuid.uuid4()}",
                                  status="ON_HOLD", holds=[{"reason": "HIGH_RISK_OF_FRAUD"}])  # fmt: skip

    async def held_is_listed() -> bool:
        return held["id"] in await all_ids(http, stack, fulfillment_status="ON_HOLD")

    await eventually(held_is_listed)

    for status, mine, not_mine in [
        ("pending", pending, paid),
        ("paid", paid, pending),
        ("voided", voided, pending),
    ]:
        found = (await list_orders(http, stack, financial_status=status, limit=250))["items"]
        assert {o["financial_status"] for o in found} == {status}
        ids = [o["id"] for o in found]
        assert mine["id"] in ids and not_mine["id"] not in ids

    on_hold = (await list_orders(http, stack, fulfillment_status="ON_HOLD", limit=250))["items"]
    assert {o["fulfillment_status"] for o in on_hold} == {"ON_HOLD"}
    assert pending["id"] not in [o["id"] for o in on_hold]
    both = await all_ids(http, stack, financial_status="pending", fulfillment_status="ON_HOLD")
    assert held["id"] in both and pending["id"] not in both
    assert held["id"] not in await all_ids(http, stack, financial_status="paid", fulfillment_status="ON_HOLD")
    assert held["id"] not in await all_ids(http, stack, fulfillment_status="UNFULFILLED")
