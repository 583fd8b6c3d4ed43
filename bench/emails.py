"""Emails per second against the local SMTP sink (the one `make run` starts), two ways.

- sender: render a shipping confirmation and hand it to the sink over SMTP, N times, with
  the service's concurrency: the ceiling set by templates + SMTP alone.
- end to end: N fulfillment.created events (notify_customer, one per order) produced onto
  the embedded Kafka; the notifications service consumes them, records each email in its
  MongoDB, sends it to the sink, records it sent and emits notification.sent. Timed from
  the first event produced to the last message file the sink wrote.

    python -m bench.emails [--count 500] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaProducer

from deploy.local_stack import LocalStack, free_port, wait_for_port
from services.notifications.domain import emails, notification
from services.notifications.mailer import Mailer, SmtpConfig, build_message
from services.notifications.templates import EmailTemplates
from services.notifications.tokens import DownloadTokens
from shared.catalog import (
    Address,
    Customer,
    FinancialStatus,
    FulfillmentChanged,
    FulfillmentLine,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    FulfillmentSnapshot,
    LineItem,
    OrderSnapshot,
    Tracking,
)
from shared.events import CloudEvent, new_event
from shared.store import now_iso

SECRET = "bench-download-link-secret-0123456789"


def shipment_event(n: int) -> CloudEvent:
    now = now_iso()
    order_id = str(uuid.uuid4())
    order = OrderSnapshot(
        id=order_id, customer=Customer(email=f"bench{n}@example.com", name=f"Buyer {n}"), currency="SEK",
        financial_status=FinancialStatus.PAID, created_at=now,
        shipping_address=Address(name=f"Buyer {n}", address1="Storgatan 1", city="Stockholm", zip="11122"),
        line_items=[LineItem(id=f"{order_id}-1", sku="MUG-1", title="Mug", quantity=2, unit_price=Decimal("99.50"))],
    )  # fmt: skip
    fulfillment = FulfillmentSnapshot(
        id=str(uuid.uuid4()), order_id=order_id, fulfillment_order_id=f"fo-{order_id}", location_id="loc-1",
        status="SUCCESS", notify_customer=True, created_at=now, updated_at=now,
        line_items=[FulfillmentLine(line_item_id=f"{order_id}-1", sku="MUG-1", quantity=2)],
        tracking=Tracking(numbers=[f"1Z{n:016d}"], company="UPS"),
    )  # fmt: skip
    fulfillment_order = FulfillmentOrderSnapshot(
        id=f"fo-{order_id}", order_id=order_id, location_id="loc-1", status=FulfillmentOrderStatus.CLOSED,
        line_items=[], created_at=now, updated_at=now,
    )  # fmt: skip
    changed = FulfillmentChanged(fulfillment=fulfillment, fulfillment_order=fulfillment_order, order=order)
    return new_event("bench", "fulfillment.created", order_id, changed)


def files_in(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(1 for entry in os.scandir(folder) if entry.name.endswith(".eml"))


async def wait_for_files(folder: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while files_in(folder) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {files_in(folder)} of {count} emails arrived in {timeout:.0f}s")
        await asyncio.sleep(0.02)


async def bench_sender(count: int, concurrency: int, folder: Path) -> float:
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "deploy.smtp_sink", "--port", str(port), "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, 30)
        templates = EmailTemplates()
        config = SmtpConfig("127.0.0.1", port)
        mailer = Mailer(config)
        links = emails.LinkPolicy(DownloadTokens(SECRET.encode()), "http://127.0.0.1:8004")
        events = [shipment_event(n) for n in range(count)]
        gate = asyncio.Semaphore(concurrency)

        async def send(event: CloudEvent) -> None:
            changed = FulfillmentChanged.model_validate(event.data)
            [draft] = emails.emails_for_fulfillment(event, changed, links, datetime.now(UTC))
            rendered = templates.render(draft.kind, draft.context)
            msg_id = notification.message_id(draft.notification_id, config.sender_domain)
            change = notification.record_pending(None, draft, rendered, msg_id, datetime.now(UTC))
            assert change is not None
            async with gate:
                await mailer.send(build_message(config, change.document))

        started = time.perf_counter()
        await asyncio.gather(*(send(event) for event in events))
        await wait_for_files(folder, count, 60)
        return count / (time.perf_counter() - started)
    finally:
        sink.terminate()
        sink.wait(10)


async def bench_end_to_end(count: int, concurrency: int, data_dir: Path) -> tuple[float, float]:
    stack = LocalStack(
        data_dir=data_dir, kafka_port=0, mongo_port=0, smtp_port=0, service_ports={"notifications": 0},
        persistent_store=False, use_environment=False,
        extra_env={"NOTIFY_SEND_CONCURRENCY": str(concurrency), "DOWNLOAD_LINK_SECRET": SECRET,
                   "LOG_LEVEL": "WARNING", "KAFKA_SESSION_TIMEOUT_MS": "6000", "OUTBOX_POLL_SECONDS": "0.2"},
    )  # fmt: skip
    try:
        stack.start_infrastructure()
        stack.start_services()
        stack.wait_until_ready(90)
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            # Warm-up: the first email waits for the consumer group to form; not part of the figure.
            warm_up = shipment_event(-1)
            await producer.send_and_wait(warm_up.spec.topic.name, warm_up.to_bytes(), key=warm_up.subject.encode())
            await wait_for_files(stack.mail_dir, 1, 60)
            events = [shipment_event(n) for n in range(count)]
            started = time.perf_counter()
            for event in events:
                await producer.send(event.spec.topic.name, event.to_bytes(), key=event.subject.encode())
            await producer.flush()
            produced = time.perf_counter() - started
            await wait_for_files(stack.mail_dir, count + 1, 600)
            elapsed = time.perf_counter() - started
        finally:
            await producer.stop()
        return count / elapsed, produced
    finally:
        stack.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="parallel SMTP sends (NOTIFY_SEND_CONCURRENCY)")
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-emails-") as tmp:
        sender = await bench_sender(args.count, args.concurrency, Path(tmp) / "sender-mail")
        print(f"sender only (render + SMTP to the sink): {sender:8.1f} emails/s  ({args.count} emails)", flush=True)
        if not args.skip_end_to_end:
            rate, produced = await bench_end_to_end(args.count, args.concurrency, Path(tmp) / "stack")
            print(
                f"end to end (Kafka -> notifications + MongoDB -> SMTP sink): {rate:8.1f} emails/s  "
                f"({args.count} events produced in {produced:.2f}s, concurrency {args.concurrency})",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
