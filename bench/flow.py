"""The whole flow's latency: from `POST /orders/{id}/pay` to the buyer's email.

    python -m bench.flow [--orders 20]

Starts its own embedded stack (broker, store, SMTP sink, the four services) on free ports, then
for digital orders (which fulfil themselves when paid) measures, one order at a time:
pay -> the orders timeline shows the fulfillment order; pay -> the notification is recorded;
pay -> it is sent (the sink accepted it). Path: orders' outbox -> Kafka -> fulfillment (routing,
automatic fulfilment) -> Kafka -> notifications (record, render, SMTP).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from deploy.local_stack import LocalStack  # noqa: E402

ENV = {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500", "LOG_LEVEL": "WARNING",
       "DOWNLOAD_LINK_SECRET": "bench-secret-of-at-least-16-bytes"}  # fmt: skip

ORDER = {
    "customer": {"email": "buyer@example.com", "name": "Bench Buyer"},
    "currency": "SEK",
    "line_items": [{"sku": "EBOOK-1", "title": "Ebook", "quantity": 1, "unit_price": "10.00",
                    "requires_shipping": False, "digital_asset_url": "https://cdn.example.com/ebook.pdf"}],
}  # fmt: skip


async def until(probe: Callable[[], Awaitable[bool]], started: float, timeout: float = 30) -> float:
    while time.perf_counter() - started < timeout:
        if await probe():
            return (time.perf_counter() - started) * 1000
        await asyncio.sleep(0.005)
    raise TimeoutError("the flow did not complete within 30s")


async def measure(stack: LocalStack, orders: int) -> None:
    timings: dict[str, list[float]] = {"fulfillment order on the order": [], "email recorded": [], "email sent": []}
    async with httpx.AsyncClient(timeout=10, headers=stack.admin_headers()) as http:
        for _ in range(orders):
            order_id = (await http.post(stack.url("orders") + "/orders", json=ORDER)).json()["id"]
            started = time.perf_counter()
            await http.post(f"{stack.url('orders')}/orders/{order_id}/pay")

            async def on_order(order_id: str = order_id) -> bool:
                body = (await http.get(f"{stack.url('orders')}/orders/{order_id}")).json()
                return any(e["type"] == "fulfillment_order.created" for e in body["timeline"])

            async def notification(status: str | None, order_id: str = order_id) -> bool:
                reply = await http.get(stack.url("notifications") + "/notifications", params={"order_id": order_id})
                items = reply.json()["items"]
                return bool(items) and (status is None or items[0]["status"] == status)

            timings["fulfillment order on the order"].append(await until(on_order, started))
            timings["email recorded"].append(await until(lambda: notification(None), started))
            timings["email sent"].append(await until(lambda: notification("sent"), started))
    print("each order, in ms:", [round(t) for t in timings["email sent"]])
    print(f"pay -> ... over {orders} digital orders, one at a time (ms):")
    for name, samples in timings.items():
        samples.sort()
        p95 = samples[max(0, round(len(samples) * 0.95) - 1)]
        print(f"  {name:<32} median {statistics.median(samples):6.0f}  p95 {p95:6.0f}  max {samples[-1]:6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-flow-") as data_dir:
        stack = LocalStack(
            data_dir=Path(data_dir), kafka_port=0, mongo_port=0, smtp_port=0,
            service_ports=dict.fromkeys(("orders", "inventory", "fulfillment", "notifications"), 0),
            persistent_store=False, use_environment=False, extra_env=ENV,
        )  # fmt: skip
        try:
            started = time.perf_counter()
            stack.start_infrastructure()
            stack.start_services()
            stack.wait_until_ready(120)
            print(f"stack ready in {time.perf_counter() - started:.1f}s")
            asyncio.run(measure(stack, args.orders))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
