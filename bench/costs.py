"""What one order costs: store commands and Kafka messages, end to end, and what idling costs.

    python -m bench.costs [--orders 100] [--in-flight 8]

Starts its own embedded stack, sets the shop to automatic fulfilment, stocks a location and
places paid physical orders (paid -> routed -> reserved -> fulfilled -> shipping email), at most
`--in-flight` at a time, until every one is fulfilled and its email sent (watched in the SMTP
sink's folder, so that waiting costs the services nothing: polling `GET /notifications` would
count the benchmark's own reads as the services' work). Then it reads every
service's /metrics: `store_commands_total` (each command any service sent to MongoDB, counted by
pymongo's command monitoring) and FastStream's published-message counter, and prints them per
order, by service and by command, beside what the services do in 10 s of idling.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import email.policy
import re
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.harness import SERVICES, embedded_stack  # noqa: E402
from deploy.local_stack import LocalStack  # noqa: E402

COMMAND = re.compile(r'^store_commands_total\{collection="([^"]*)",command="([^"]*)"\} (\S+)$', re.M)
PUBLISHED = re.compile(r"^faststream_published_messages_total\{[^}]*\} (\S+)$", re.M)


async def snapshot(http: httpx.AsyncClient, stack: LocalStack) -> tuple[Counter[tuple[str, str, str]], float]:
    """Store commands by (service, collection, command), and messages published, so far."""
    commands: Counter[tuple[str, str, str]] = Counter()
    published = 0.0
    for service in SERVICES:
        text = (await http.get(stack.url(service) + "/metrics")).text
        for collection, command, value in COMMAND.findall(text):
            commands[service, collection, command] += int(float(value))
        published += sum(float(v) for v in PUBLISHED.findall(text))
    return commands, published


def order(sku: str, tag: str, i: int) -> dict[str, object]:
    return {
        "customer": {"email": f"buyer+{tag}-{i}@example.com", "name": "Bench Buyer"},
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122", "country_code": "SE"},
        "currency": "SEK", "financial_status": "paid",
        "line_items": [{"sku": sku, "title": "Mug", "quantity": 1, "unit_price": "10.00"}],
    }  # fmt: skip


class Mailbox:
    """The recipients of the emails the stack's SMTP sink kept (each as a .eml file, written whole)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.read: set[Path] = set()
        self.recipients: set[str] = set()

    def received(self, address: str) -> bool:
        for path in sorted(self.folder.glob("*.eml")):
            if path not in self.read:
                with path.open("rb") as file:
                    headers = email.parser.BytesHeaderParser(policy=email.policy.default).parse(file)
                self.recipients.add(str(headers["To"]))
                self.read.add(path)
        return any(address in recipient for recipient in self.recipients)


async def measure(stack: LocalStack, orders: int, in_flight: int) -> None:
    tag = uuid.uuid4().hex[:8]
    sku, location = f"MUG-{tag}", f"wh-{tag}"
    async with httpx.AsyncClient(timeout=30, headers=stack.admin_headers()) as http:
        await http.put(f"{stack.url('inventory')}/locations/{location}", json={"name": "Bench", "priority": 1})
        await http.put(f"{stack.url('inventory')}/stock/{location}/{sku}", json={"on_hand": orders * 2})
        await http.put(f"{stack.url('fulfillment')}/settings", json={"auto_fulfill": True})
        while not any(
            level["location_id"] == location
            for level in (await http.get(f"{stack.url('fulfillment')}/routing/stock/{sku}")).json()["locations"]
        ):
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # let the setup's events settle before counting
        before, published_before = await snapshot(http, stack)
        gate = asyncio.Semaphore(in_flight)
        mailbox = Mailbox(stack.mail_dir)
        started = time.perf_counter()

        async def one(i: int) -> None:
            async with gate:
                reply = await http.post(f"{stack.url('orders')}/orders", json=order(sku, tag, i))
                assert reply.status_code == 201, reply.text
                while not mailbox.received(f"buyer+{tag}-{i}@example.com"):
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(one(i) for i in range(orders)))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(2)  # the last relays and commits
        after, published_after = await snapshot(http, stack)
        await asyncio.sleep(10)
        idle, _ = await snapshot(http, stack)

    per_order = after - before
    idling = idle - after
    total = sum(per_order.values())
    print(f"{orders} paid orders, {in_flight} in flight: {orders / elapsed:.2f} orders/s")
    print(f"store commands per order: {total / orders:.1f}; Kafka messages published per order: "
          f"{(published_after - published_before) / orders:.1f}")  # fmt: skip
    by_service: Counter[str] = Counter()
    for (service, _, _), n in per_order.items():
        by_service[service] += n
    for service, n in by_service.most_common():
        print(f"  {service:<14} {n / orders:6.1f}")
    print("by collection and command, per order:")
    for (service, collection, command), n in per_order.most_common(25):
        print(f"  {service:<14} {collection:<22} {command:<16} {n / orders:6.2f}")
    print(f"idle: {sum(idling.values()) / 10:.1f} store commands/s")
    for (service, collection, command), n in idling.most_common(10):
        print(f"  {service:<14} {collection:<22} {command:<16} {n / 10:6.2f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()
    with embedded_stack("costs") as stack:
        asyncio.run(measure(stack, args.orders, args.in_flight))


if __name__ == "__main__":
    main()
