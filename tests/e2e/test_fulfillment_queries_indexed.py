"""Every query fulfillment sends to the store is answered from an index (issue 15: "Every query
indexed"; "paid -> fulfillment order created 117 ms / 1.5 s / 6.1 s" as orders pile up).

The fulfillment paths the whole-platform check (test_every_query_indexed) does not walk: an
out-of-stock hold re-routed when its stock arrives, the post-purchase offer, a cancellation, a
shipment found by its id, pages by cursor, a fulfillment service's own listing, a bulk job, and
the sweep (which runs when the service starts). Same rules: the store's real query plan, and the
shapes the embedded store scans for whatever the indexes refused outright.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from deploy.local_stack import LocalStack
from tests.conftest import eventually
from tests.e2e.test_every_query_indexed import logged_queries, unindexed
from tests.e2e.test_fulfillment_flows import Shop, physical

pytestmark = pytest.mark.e2e


async def drive_fulfillment(shop: Shop, token: Callable[..., str]) -> None:
    fulfillment = shop.stack.url("fulfillment")
    service = f"svc-{shop.tag}"
    here = await shop.location("here")
    there = await shop.location("there", fulfillment_service=service)
    mug, cup = shop.sku("MUG"), shop.sku("CUP")

    # Out of stock everywhere: held; stock arrives at one location: re-routed there.
    waiting = await shop.paid_order(physical(mug, 2))
    (held,) = await shop.settle(waiting["id"], 1)
    assert held["status"] == "ON_HOLD"
    await shop.stock(here, mug, 5)
    fo = await shop.rerouted(waiting["id"], held["id"])
    assert fo["location_id"] == here

    shipped = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {"notify_customer": False})
    assert shipped.status_code == 201, shipped.text
    fulfillment_id = shipped.json()["id"]
    assert (await shop.http.get(f"{fulfillment}/fulfillments/{fulfillment_id}")).status_code == 200
    tracked = await shop.post(f"/fulfillments/{fulfillment_id}/tracking", {"numbers": ["1Z"], "company": "UPS"})
    assert tracked.status_code == 200, tracked.text

    # The post-purchase offer, and a cancellation.
    await shop.stock(there, cup, 5)
    offered = await shop.paid_order(physical(cup, 1), post_purchase_pending=True)
    await shop.settle(offered["id"], 1)
    completed = await shop.http.post(f"{shop.stack.url('orders')}/orders/{offered['id']}/post-purchase/complete")
    assert completed.status_code in (200, 202), completed.text
    cancelled = await shop.paid_order(physical(mug, 1))
    await shop.settle(cancelled["id"], 1)
    reply = await shop.http.post(
        f"{shop.stack.url('orders')}/orders/{cancelled['id']}/cancel",
        json={"refund": "none", "restock": True, "notify_customer": False, "reason": "customer"},
    )
    assert reply.status_code == 200, reply.text

    # Lists: every filter, and a second page by cursor; a fulfillment service's own.
    for params in ({"location_id": here, "status": "OPEN"}, {"status": "ON_HOLD"}, {"location_id": there}):
        assert (await shop.http.get(f"{fulfillment}/fulfillment-orders", params=params)).status_code == 200
    first = (await shop.http.get(f"{fulfillment}/fulfillment-orders", params={"limit": 1})).json()
    after = await shop.http.get(f"{fulfillment}/fulfillment-orders", params={"after": first["next_cursor"]})
    assert after.status_code == 200, after.text
    as_service = {"authorization": f"Bearer {token(f'fulfillment_service:{service}')}"}
    mine = await shop.http.get(f"{fulfillment}/fulfillment-orders", params={"status": "OPEN"}, headers=as_service)
    assert mine.status_code == 200, mine.text
    assert {fo["location_id"] for fo in mine.json()["items"]} <= {there}

    # A bulk job.
    job = await shop.post("/bulk-jobs", {"action": "hold", "reason": "OTHER", "fulfillment_order_ids": [fo["id"]]})
    assert job.status_code == 202, job.text

    async def finished() -> bool:
        reply = await shop.http.get(f"{fulfillment}/bulk-jobs/{job.json()['id']}")
        return bool(reply.json()["status"] == "COMPLETED")

    await eventually(finished, timeout=30)


async def test_every_query_of_fulfillment_is_served_by_an_index(
    stack: LocalStack, http: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    await drive_fulfillment(Shop(stack, http), token)
    queries = [query for query in logged_queries(stack) if query["database"] == "fulfillment"]
    assert len(queries) > 15, "fulfillment logged its queries"
    problems = await unindexed(stack.mongodb_uri, queries)
    assert not problems, f"{len(problems)} of {len(queries)} fulfillment query shapes scan:\n" + "\n".join(
        sorted(problems)
    )
