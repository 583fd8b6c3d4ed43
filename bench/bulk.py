"""Bulk jobs of 250 orders, start to completed, on the embedded stack (issue 11's figures).

    python -m bench.bulk [--orders 250]

Starts its own embedded stack, places `--orders` paid one-line orders at one location (manual
fulfilment: each waits OPEN, its stock reserved), then times, from `POST /bulk-jobs` to the job
read back COMPLETED: a bulk fulfil of their fulfillment orders (fulfillment), a bulk
mark_unfulfilled of the same orders (fulfillment), and a bulk cancel_orders of them (orders).
Each figure is also given as the job's own created_at -> completed_at (no polling in it).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.harness import embedded_stack, order_body
from deploy.local_stack import LocalStack
from shared.clock import parse

LOCATION, SKU = "bench-wh", "BENCH-MUG"


async def place(http: httpx.AsyncClient, stack: LocalStack, count: int) -> list[dict[str, Any]]:
    """`count` paid orders; their fulfillment orders once OPEN with the stock reserved."""
    orders_url, fo_url = f"{stack.url('orders')}/orders", f"{stack.url('fulfillment')}/fulfillment-orders"
    placed: list[str] = []
    for start in range(0, count, 10):
        replies = await asyncio.gather(
            *(http.post(orders_url, json=order_body(SKU, i, paid=True)) for i in range(start, min(count, start + 10)))
        )
        placed += [reply.raise_for_status().json()["id"] for reply in replies]
    fos = []
    for order_id in placed:
        while True:
            items = (await http.get(fo_url, params={"order_id": order_id})).json()["items"]
            if items and items[0]["status"] == "OPEN" and items[0]["reservation_status"] == "RESERVED":
                fos.append(items[0])
                break
            await asyncio.sleep(0.05)
    return fos


async def routing_sees(http: httpx.AsyncClient, stack: LocalStack, on_hand: int) -> None:
    """Wait for routing's copy of the stock (an order placed before it would wait for the stock)."""
    while True:
        view = (await http.get(f"{stack.url('fulfillment')}/routing/stock/{SKU}")).json()
        if any(level["location_id"] == LOCATION and level["available"] >= on_hand for level in view["locations"]):
            return
        await asyncio.sleep(0.1)


async def timed_job(http: httpx.AsyncClient, stack: LocalStack, service: str, body: dict[str, Any]) -> str:
    url = f"{stack.url(service)}/bulk-jobs"
    began = time.perf_counter()
    job = (await http.post(url, json=body)).raise_for_status().json()
    while job["status"] != "COMPLETED":
        await asyncio.sleep(0.05)
        job = (await http.get(f"{url}/{job['id']}")).raise_for_status().json()
    elapsed = time.perf_counter() - began
    own = (parse(job["completed_at"]) - parse(job["created_at"])).total_seconds()
    return (
        f"{job['action']:<18} {job['total']} {'orders' if 'order_ids' in body else 'fulfillment orders'}: "
        f"{elapsed:.2f}s start to completed ({own:.2f}s in the job; {job['total'] / elapsed:.0f} per second), "
        f"{job['succeeded']} succeeded, {job['failed']} failed"
    )


async def main(count: int) -> None:
    with embedded_stack("bulk") as stack:
        async with httpx.AsyncClient(timeout=120, headers=stack.admin_headers(3600)) as http:
            inventory = stack.url("inventory")
            body = {"name": "Bench", "priority": 1}
            (await http.put(f"{inventory}/locations/{LOCATION}", json=body)).raise_for_status()
            (await http.put(f"{inventory}/stock/{LOCATION}/{SKU}", json={"on_hand": count * 2})).raise_for_status()
            await routing_sees(http, stack, count * 2)
            began = time.perf_counter()
            fos = await place(http, stack, count)
            print(f"{count} orders placed and reserved in {time.perf_counter() - began:.1f}s", flush=True)
            fo_ids, order_ids = [fo["id"] for fo in fos], [fo["order_id"] for fo in fos]
            print(await timed_job(http, stack, "fulfillment", {"action": "fulfill", "fulfillment_order_ids": fo_ids}))
            print(await timed_job(http, stack, "fulfillment", {"action": "mark_unfulfilled", "order_ids": order_ids}))
            cancel = {"action": "cancel_orders", "order_ids": order_ids, "refund": "now", "restock": True,
                      "notify_customer": True, "reason": "customer"}  # fmt: skip
            print(await timed_job(http, stack, "orders", cancel))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=250)
    asyncio.run(main(parser.parse_args().orders))
