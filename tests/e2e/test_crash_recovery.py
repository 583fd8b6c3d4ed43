"""Delivery semantics proven by crashing: nothing is lost and nothing happens twice.

A stack of its own (broker, store, four services, an SMTP server in this process), because
its services are killed with SIGKILL (no shutdown hooks, no last outbox pass) while orders
flow through them. Afterwards every order must be settled exactly once: its lines covered
once by fulfillment orders, stock moved once, one email per fulfillment (the same email
re-sent keeps its Message-ID; that is the documented at-least-once design and is counted),
no duplicated timeline entry, no business fact announced twice on Kafka under two event ids,
nothing dead-lettered. A second test duplicates order.paid at the edge (same id, new id).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.local_stack import LocalStack
from deploy.smtp_sink import Received, SmtpSink
from shared.catalog import OrderPaid, OrderSnapshot
from shared.events import new_event
from shared.topics import TOPICS, all_topic_partitions
from tests.conftest import eventually, running_stack, smtp_server
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

log = logging.getLogger(__name__)

ORDERS_TOPIC, INVENTORY_TOPIC, FULFILLMENT_TOPIC = "orders.events.v1", "inventory.events.v1", "fulfillment.events.v1"
DLQ_TOPICS = tuple(topic.dlq for topic in TOPICS)
SERVICES = ("orders", "inventory", "fulfillment", "notifications")
KILL_ORDER = ("fulfillment", "inventory", "notifications", "orders")
STOCK = {"primary": 8, "backup": 6}  # units of the mug at each location; less than the orders want
DOWNLOADS = "download_links"
SHIPPING = "shipping_confirmation"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    """An SMTP server of this module's own, so that it counts only these tests' emails."""
    with smtp_server() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpSink) -> Iterator[LocalStack]:
    with running_stack(
        tmp_path_factory.mktemp("crash-recovery"), SMTP_HOST=smtp.host, SMTP_PORT=str(smtp.port)
    ) as local:
        yield local


class Platform:
    """The stack seen from outside: its HTTP APIs, tolerant of a service that is down."""

    def __init__(self, stack: LocalStack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.url(service)}{path}"

    async def get(self, service: str, path: str, **params: str) -> Any:
        """The JSON body, or None while the service is down or restarting."""
        try:
            reply = await self.http.get(self.url(service, path), params=params)
        except httpx.TransportError:
            return None
        return reply.json() if reply.status_code == 200 else None

    async def put(self, service: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.http.put(self.url(service, path), json=body)
        assert reply.status_code in (200, 201), reply.text
        return dict(reply.json())

    async def ready(self, service: str) -> bool:
        try:
            return (await self.http.get(self.url(service, "/readyz"))).status_code == 200
        except httpx.TransportError:
            return False

    async def received(self, service: str) -> float:
        """Messages the service's consumer has taken from Kafka since the process started."""
        try:
            text = (await self.http.get(self.url(service, "/metrics"))).text
        except httpx.TransportError:
            return 0
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("faststream_received_messages_total{")
        )

    async def stock_and_routing(self, location_id: str, sku: str, on_hand: int) -> None:
        await self.put("inventory", f"/stock/{location_id}/{sku}", {"on_hand": on_hand})

        async def routing_sees_it() -> bool:
            view = await self.get("fulfillment", f"/routing/stock/{sku}")
            return bool(view) and any(
                loc["location_id"] == location_id and loc["available"] == on_hand for loc in view["locations"]
            )

        await eventually(routing_sees_it, timeout=30, interval=0.3)

    async def fulfillment_orders(self, order_id: str) -> list[dict[str, Any]] | None:
        body = await self.get("fulfillment", "/fulfillment-orders", order_id=order_id)
        return None if body is None else list(body["items"])

    async def order(self, order_id: str) -> dict[str, Any] | None:
        body = await self.get("orders", f"/orders/{order_id}")
        return None if body is None else dict(body)

    async def notifications(self, order_id: str) -> list[dict[str, Any]] | None:
        body = await self.get("notifications", "/notifications", order_id=order_id)
        return None if body is None else list(body["items"])

    async def restart(self, service: str) -> None:
        """SIGKILL the service (a crash: no shutdown hooks) and start it again."""
        [child] = [c for c in self.stack.children if c.name == service]
        self.stack.kill_child(child)
        self.stack.start_service(service)
        await eventually(lambda: self.ready(service), timeout=60, interval=0.3)


# Which of the topics copied in the tests each service's consumer group reads.
SUBSCRIBED = {
    "orders": (FULFILLMENT_TOPIC, INVENTORY_TOPIC),
    "inventory": (FULFILLMENT_TOPIC, ORDERS_TOPIC),
    "fulfillment": (ORDERS_TOPIC, INVENTORY_TOPIC),
    "notifications": (ORDERS_TOPIC, FULFILLMENT_TOPIC),
}


async def publish(
    bootstrap: str, messages: Sequence[tuple[str, bytes | None, bytes | None]]
) -> dict[TopicPartition, int]:
    """Put (topic, value, key) messages on Kafka in this order; the offset of the last one on
    each partition, to wait until consumers are past them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    last: dict[TopicPartition, int] = {}
    try:
        sent = [await producer.send(topic, value, key=key) for topic, value, key in messages]
        for metadata in await asyncio.gather(*sent):
            tp = TopicPartition(metadata.topic, metadata.partition)
            last[tp] = max(last.get(tp, -1), metadata.offset)
    finally:
        await producer.stop()
    return last


async def consumed_past(bootstrap: str, positions: dict[TopicPartition, int]) -> list[str]:
    """The consumer groups that have not yet committed past these offsets (empty: all have)."""
    behind = []
    for group, topics in SUBSCRIBED.items():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            for tp, offset in positions.items():
                if tp.topic in topics and ((await consumer.committed(tp)) or 0) <= offset:
                    behind.append(f"{group} {tp.topic}[{tp.partition}]")
        finally:
            await consumer.stop()
    return behind


async def end_offsets(bootstrap: str, *topics: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        counts = all_topic_partitions()
        ends: dict[TopicPartition, int] = await consumer.end_offsets(
            [TopicPartition(topic, p) for topic in topics for p in range(counts[topic])]
        )
        return ends
    finally:
        await consumer.stop()


async def has_read_everything(reader: TopicReader) -> bool:
    """The reader has every message now on its topics."""
    read: dict[TopicPartition, int] = {}
    for record in reader.records:
        tp = TopicPartition(record.topic, record.partition)
        read[tp] = max(read.get(tp, 0), record.offset + 1)
    ends = await end_offsets(reader.bootstrap, *reader.topics)
    return all(read.get(tp, 0) >= end for tp, end in ends.items())


async def group_lag(bootstrap: str, group: str) -> int:
    """How many messages on the group's topics it has not committed yet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        counts = all_topic_partitions()
        partitions = [TopicPartition(topic, p) for topic in SUBSCRIBED[group] for p in range(counts[topic])]
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for tp in partitions:
            lag += ends[tp] - ((await consumer.committed(tp)) or 0)
        return lag
    finally:
        await consumer.stop()


@dataclass
class PlacedOrder:
    id: str
    email: str
    lines: list[dict[str, Any]]  # as the orders service returned them (with ids)


@dataclass
class Kill:
    service: str
    received_before: float  # messages the killed process had taken from Kafka
    lag: int  # messages on its topics its group had not yet committed (in hand or still to come)
    paid_on_kafka: int  # orders whose order.paid had reached Kafka when it died
    fulfillments_on_kafka: int  # distinct fulfillment.created seen when it died
    emails: int  # emails at the SMTP server when it died


@dataclass
class Findings:
    """What the checks found; problems are collected so that one failure shows them all."""

    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


async def soon(probe: Callable[[], Any], timeout: float) -> bool:
    """Wait a while for a condition that makes a crash more telling; go on without it if it
    does not come (what the test checks afterwards must hold either way)."""
    try:
        await eventually(probe, timeout=timeout, interval=0.2)
    except AssertionError:
        return False
    return True


def physical(sku: str, quantity: int) -> dict[str, Any]:
    return {"sku": sku, "title": sku, "quantity": quantity, "unit_price": "10.00"}


def digital(sku: str) -> dict[str, Any]:
    return {"sku": sku, "title": sku, "quantity": 1, "unit_price": "5.00", "requires_shipping": False,
            "digital_asset_url": f"https://files.example.com/{sku}.pdf"}  # fmt: skip


def order_lines(index: int, mug: str, ebook: str, rare: str) -> list[dict[str, Any]]:
    """30 orders: digital only, physical (more mugs in total than stock), mixed, and some
    wanting a sku nobody stocks (out-of-stock holds whatever the timing)."""
    kind = index % 5
    if kind in (0, 1):
        return [physical(mug, 1 + index % 2)]
    if kind == 2:
        return [digital(ebook)]
    if kind == 3:
        return [digital(ebook), physical(mug, 1)]
    return [physical(rare, 1)] if index % 2 else [physical(rare, 2), physical(mug, 1)]


async def place_pending_order(platform: Platform, lines: list[dict[str, Any]], email: str) -> PlacedOrder:
    body = {
        "customer": {"email": email, "name": "Buyer"},
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122", "country_code": "SE"},
        "currency": "SEK", "financial_status": "pending", "line_items": lines,
    }  # fmt: skip
    reply = await platform.http.post(platform.url("orders", "/orders"), json=body)
    assert reply.status_code == 201, reply.text
    created = reply.json()
    return PlacedOrder(created["id"], email, created["line_items"])


async def pay(platform: Platform, order: PlacedOrder) -> None:
    reply = await platform.http.post(platform.url("orders", f"/orders/{order.id}/pay"))
    assert reply.status_code == 200, reply.text


def is_out_of_stock_hold(fo: dict[str, Any]) -> bool:
    return fo["status"] == "ON_HOLD" and any(h["reason"] == "INVENTORY_OUT_OF_STOCK" for h in fo["holds"])


def live(fos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [fo for fo in fos if fo["status"] != "CANCELLED"]


def expected_emails(fos: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Which emails each fulfillment asks for: download links for digital lines, a shipping
    confirmation for physical ones (automatic fulfillments notify the customer)."""
    wanted: dict[str, set[str]] = {DOWNLOADS: set(), SHIPPING: set()}
    for fo in fos:
        for fulfillment in fo["fulfillments"]:
            if fulfillment["status"] != "SUCCESS":
                continue
            if any(line.get("digital_asset_url") for line in fulfillment["line_items"]):
                wanted[DOWNLOADS].add(fulfillment["id"])
            if fo["location_id"] is not None and fulfillment["notify_customer"]:
                wanted[SHIPPING].add(fulfillment["id"])
    return wanted


def mail_of(smtp: SmtpSink, email: str) -> list[Received]:
    return [m for m in smtp.messages() if email in m.rcpt_tos]


async def settled(platform: Platform, smtp: SmtpSink, order: PlacedOrder) -> dict[str, Any] | str:
    """The order's final state once nothing is left to happen to it, else what it still waits
    for: every line covered by a closed fulfillment order or an out-of-stock hold, no
    reservation pending, the display status and the emails caught up."""
    fos = await platform.fulfillment_orders(order.id)
    if not fos:
        return "no fulfillment orders yet"
    current = live(fos)
    if any(fo.get("reroute_pending") or fo["reservation_status"] == "PENDING" for fo in current):
        return f"waiting for inventory or a re-route: {[(fo['status'], fo['reservation_status']) for fo in current]}"
    if not all(fo["status"] == "CLOSED" or is_out_of_stock_hold(fo) for fo in current):
        return f"not final: {[(fo['status'], fo['holds']) for fo in current]}"
    covered: Counter[str] = Counter()
    for fo in current:
        for line in fo["line_items"]:
            covered[line["line_item_id"]] += line["quantity"]
    if covered != Counter({line["id"]: line["quantity"] for line in order.lines}):
        return f"lines covered {dict(covered)}"
    # Shopify's display status: what is left to ship is all on hold, so ON_HOLD even if some shipped.
    display = "FULFILLED" if all(fo["status"] == "CLOSED" for fo in current) else "ON_HOLD"
    snapshot = await platform.order(order.id)
    if snapshot is None or snapshot["fulfillment_status"] != display:
        return f"display status {snapshot and snapshot['fulfillment_status']}, expected {display}"
    wanted = expected_emails(fos)
    notifications = await platform.notifications(order.id)
    if notifications is None or len(notifications) < sum(map(len, wanted.values())):
        return f"notifications {notifications} for {wanted}"
    if any(n["status"] != "sent" for n in notifications):
        return f"notifications not sent: {[n['status'] for n in notifications]}"
    ids = {str(m.message["Message-ID"]) for m in mail_of(smtp, order.email)}
    if len(ids) < sum(map(len, wanted.values())):
        return f"{len(ids)} emails received for {wanted}"
    # The order has heard of every notification sent (notification.sent on its timeline).
    heard = sum(entry["type"] == "notification.sent" for entry in snapshot["timeline"])
    if heard < len(notifications):
        return f"timeline has {heard} notification.sent of {len(notifications)}"
    return {"fulfillment_orders": fos, "order": snapshot, "notifications": notifications}


def check_order(findings: Findings, order: PlacedOrder, state: dict[str, Any], smtp: SmtpSink) -> None:
    fos = state["fulfillment_orders"]
    for fo in live(fos):
        for line in fo["line_items"]:
            findings.expect(
                line["fulfilled_quantity"] <= line["quantity"],
                f"{order.id}: {fo['id']} line {line['line_item_id']} fulfilled {line['fulfilled_quantity']} "
                f"of {line['quantity']}",
            )
        shipped: Counter[str] = Counter()
        for fulfillment in fo["fulfillments"]:
            if fulfillment["status"] == "SUCCESS":
                for line in fulfillment["line_items"]:
                    shipped[line["line_item_id"]] += line["quantity"]
        if fo["status"] == "CLOSED":
            findings.expect(
                shipped == Counter({li["line_item_id"]: li["quantity"] for li in fo["line_items"]}),
                f"{order.id}: closed {fo['id']} shipped {dict(shipped)}, its lines are {fo['line_items']}",
            )
        else:
            findings.expect(not shipped, f"{order.id}: held {fo['id']} shipped {dict(shipped)}")
    for fo in fos:
        if fo["status"] == "CANCELLED":
            findings.expect(not fo["fulfillments"], f"{order.id}: cancelled {fo['id']} has fulfillments")

    # Emails: one per fulfillment and kind; a resend keeps its Message-ID (counted, allowed).
    wanted = expected_emails(fos)
    received = mail_of(smtp, order.email)
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for message in received:
        by_kind[str(message.message["X-Notification-Type"])][str(message.message["Message-ID"])] += 1
    for kind in (DOWNLOADS, SHIPPING):
        findings.expect(
            len(by_kind[kind]) == len(wanted[kind]),
            f"{order.id}: {len(by_kind[kind])} distinct {kind} emails ({dict(by_kind[kind])}) "
            f"for {len(wanted[kind])} fulfillments",
        )
    unexpected = set(by_kind) - {DOWNLOADS, SHIPPING}
    findings.expect(not unexpected, f"{order.id}: unexpected emails {unexpected}")
    findings.figures["emails"] += len(received)
    findings.figures["distinct_emails"] += sum(len(ids) for ids in by_kind.values())
    findings.figures["resent_same_message_id"] += sum(n - 1 for ids in by_kind.values() for n in ids.values())
    notifications = state["notifications"]
    findings.expect(
        len(notifications) == sum(map(len, wanted.values())),
        f"{order.id}: {len(notifications)} notifications recorded for {wanted}",
    )

    # The timeline: each event recorded once.
    timeline_ids = Counter(entry["event_id"] for entry in state["order"]["timeline"])
    twice = {event_id: n for event_id, n in timeline_ids.items() if n > 1}
    findings.expect(not twice, f"{order.id}: timeline has events more than once: {twice}")


def check_stock(
    findings: Findings, levels: dict[str, dict[str, dict[str, int]]], set_to: dict[tuple[str, str], int],
    states: list[dict[str, Any]],
) -> None:  # fmt: skip
    """on_hand is what was set minus what the fulfillments say shipped from there; reserved is
    what open fulfillment orders still hold there; available never negative."""
    shipped: Counter[tuple[str, str]] = Counter()
    held: Counter[tuple[str, str]] = Counter()
    for state in states:
        for fo in live(state["fulfillment_orders"]):
            for fulfillment in fo["fulfillments"]:
                if fulfillment["status"] == "SUCCESS" and fulfillment["location_id"]:
                    for line in fulfillment["line_items"]:
                        shipped[fulfillment["location_id"], line["sku"]] += line["quantity"]
            if fo["status"] != "CLOSED" and fo["reservation_status"] == "RESERVED":
                for line in fo["line_items"]:
                    held[fo["location_id"], line["sku"]] += line["quantity"] - line["fulfilled_quantity"]
    for (location_id, sku), on_hand in set_to.items():
        level = levels[sku].get(location_id)
        findings.expect(level is not None, f"no stock level for {sku} at {location_id}")
        if level is None:
            continue
        findings.expect(
            level["on_hand"] == on_hand - shipped[location_id, sku],
            f"{sku}@{location_id}: on_hand {level['on_hand']}, set {on_hand}, shipped {shipped[location_id, sku]}",
        )
        findings.expect(
            level["reserved"] == held[location_id, sku],
            f"{sku}@{location_id}: reserved {level['reserved']}, open holds {held[location_id, sku]}",
        )
        findings.expect(level["available"] >= 0, f"{sku}@{location_id}: available {level['available']}")
    findings.figures["shipped_units"] = dict(shipped)


def distinct_ids(events: list[dict[str, Any]]) -> set[str]:
    return {event["id"] for event in events}


def check_kafka(
    findings: Findings, kafka: TopicReader, orders: list[PlacedOrder], states: list[dict[str, Any]]
) -> None:
    """Redelivered copies (same event id) are allowed; two events for one business fact are not."""
    ours = {order.id for order in orders}
    events = [e for e in kafka.events() if e.get("subject") in ours or e.get("data", {}).get("order_id") in ours]
    copies = Counter(event["id"] for event in events)
    findings.figures["kafka_events"] = len(copies)
    findings.figures["kafka_copies_beyond_the_first"] = sum(n - 1 for n in copies.values())

    by_fact: dict[tuple[str, ...], set[str]] = defaultdict(set)
    fulfillment_lines: dict[str, dict[str, Any]] = {}
    for event in events:
        kind, data = event["type"], event["data"]
        if kind in ("order.created", "order.paid"):
            by_fact[kind, event["subject"]].add(event["id"])
        elif kind == "fulfillment_order.created":
            by_fact[kind, data["fulfillment_order"]["id"]].add(event["id"])
        elif kind == "fulfillment.created":
            by_fact[kind, data["fulfillment"]["id"]].add(event["id"])
            fulfillment_lines[data["fulfillment"]["id"]] = data["fulfillment"]
        elif kind in ("inventory.reserved", "inventory.committed", "inventory.reservation_failed"):
            # No moves or cancellations in this scenario: each happens once per fulfillment order.
            by_fact[kind, data["fulfillment_order_id"], data["location_id"]].add(event["id"])
    twice = {" ".join(fact): ids for fact, ids in by_fact.items() if len(ids) > 1}
    findings.expect(not twice, f"business facts announced under several event ids: {twice}")

    # Every fulfillment the API shows was announced, and none the API does not know.
    api_fulfillments = {
        f["id"] for state in states for fo in state["fulfillment_orders"] for f in fo["fulfillments"]
    }  # fmt: skip
    findings.expect(
        set(fulfillment_lines) == api_fulfillments,
        f"fulfillment.created on Kafka {sorted(set(fulfillment_lines) ^ api_fulfillments)} differ from the API",
    )
    per_fo_line: Counter[tuple[str, str]] = Counter()
    for fulfillment in fulfillment_lines.values():
        for line in fulfillment["line_items"]:
            per_fo_line[fulfillment["fulfillment_order_id"], line["line_item_id"]] += line["quantity"]
    quantities = {
        (fo["id"], line["line_item_id"]): line["quantity"]
        for state in states for fo in state["fulfillment_orders"] for line in fo["line_items"]
    }  # fmt: skip
    over = {key: n for key, n in per_fo_line.items() if n > quantities.get(key, 0)}
    findings.expect(not over, f"fulfillment.created events ship more than the lines hold: {over}")
    findings.figures["fulfillments"] = len(api_fulfillments)


async def test_killing_each_service_mid_flow_loses_nothing_and_does_nothing_twice(
    stack: LocalStack, http: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    platform = Platform(stack, http)
    tag = uuid.uuid4().hex[:8]
    mug, ebook, rare = f"MUG-{tag}", f"EBOOK-{tag}", f"RARE-{tag}"
    locations = {name: f"{name}-{tag}" for name in STOCK}
    for priority, (name, location_id) in enumerate(locations.items(), start=1):
        await platform.put("inventory", f"/locations/{location_id}", {"name": name, "priority": priority})
    set_to = {(locations[name], mug): units for name, units in STOCK.items()}
    for (location_id, sku), units in set_to.items():
        await platform.stock_and_routing(location_id, sku, units)
    await platform.put("fulfillment", "/settings", {"auto_fulfill": True, "sweep_interval_seconds": 1})

    async with TopicReader(stack.kafka_bootstrap, ORDERS_TOPIC, INVENTORY_TOPIC, FULFILLMENT_TOPIC) as kafka:
        orders = await asyncio.gather(*(
            place_pending_order(platform, order_lines(i, mug, ebook, rare), f"buyer+{tag}-{i}@example.com")
            for i in range(30)
        ))  # fmt: skip
        started = time.monotonic()
        # Payments come in three waves, so that each crash finds work in hand: the first wave
        # before fulfillment and inventory die, the second before notifications, the third just
        # before orders (its order.paid events then wait in the outbox of a dead process).
        waves = {"fulfillment": orders[:12], "notifications": orders[12:21], "orders": orders[21:]}

        def fulfillments_seen() -> int:
            return len({e["data"]["fulfillment"]["id"] for e in kafka.events() if e["type"] == "fulfillment.created"})

        def paid_seen() -> int:
            return len({e["subject"] for e in kafka.events() if e["type"] == "order.paid"})

        async def busy(service: str) -> bool:
            return bool(await platform.received(service)) and bool(await group_lag(stack.kafka_bootstrap, service))

        kills: list[Kill] = []
        previous: str | None = None
        for service in KILL_ORDER:
            await asyncio.gather(*(pay(platform, order) for order in waves.get(service, [])))
            if previous is not None:  # the service restarted before is back at work
                await soon(partial(platform.received, previous), timeout=20)
            if service != "orders":  # crash it while its group has messages in hand or queued
                await soon(partial(busy, service), timeout=30)
            log.warning("killing %s at %.1fs", service, time.monotonic() - started)
            received, lag = await platform.received(service), await group_lag(stack.kafka_bootstrap, service)
            kills.append(Kill(service, received, lag, paid_seen(), fulfillments_seen(), len(smtp.messages())))
            await platform.restart(service)
            previous = service

        waiting: dict[str, str] = {}

        async def all_settled() -> list[dict[str, Any]] | None:
            states = [await settled(platform, smtp, order) for order in orders]
            waiting.clear()
            waiting.update({o.id: s for o, s in zip(orders, states, strict=True) if isinstance(s, str)})
            return None if waiting else [s for s in states if isinstance(s, dict)]

        log.warning("all restarted at %.1fs", time.monotonic() - started)
        # Redelivery on top of the crashes: every event of these orders so far, once more (same
        # key, same event id), as a relay that published twice or a group that lost its offsets.
        ours = {order.id.encode() for order in orders}
        copied = [(r.topic, r.value, r.key) for r in kafka.records if r.key in ours]
        last_copies = await publish(stack.kafka_bootstrap, copied)
        try:
            states: list[dict[str, Any]] = await eventually(all_settled, timeout=120, interval=1)
        except AssertionError:
            raise AssertionError(f"not settled after the kills {kills}: {waiting}") from None

        # Settled; and every consumer has been through the copies (they changed nothing, or
        # the checks below see it).
        async def copies_consumed() -> bool:
            return not await consumed_past(stack.kafka_bootstrap, last_copies)

        await eventually(copies_consumed, timeout=60, interval=1)
        await eventually(partial(has_read_everything, kafka), timeout=30, interval=0.5)

    log.warning("settled at %.1fs", time.monotonic() - started)
    findings = Findings(figures={"emails": 0, "distinct_emails": 0, "resent_same_message_id": 0})
    for order, state in zip(orders, states, strict=True):
        check_order(findings, order, state, smtp)
    levels = {}
    for sku in (mug, rare):
        body = await platform.get("inventory", f"/stock/{sku}")
        levels[sku] = {level["location_id"]: level for level in body["locations"]}
    check_stock(findings, levels, set_to, states)
    check_kafka(findings, kafka, orders, states)
    # Every level inventory announced on the way, not only the last: never below zero.
    announced = [e["data"] for e in kafka.events() if e["type"] == "inventory.level_changed"]
    announced = [level for level in announced if level["sku"] in (mug, rare)]
    negative = [level for level in announced if min(level["on_hand"], level["reserved"], level["available"]) < 0]
    findings.expect(bool(announced) and not negative, f"levels below zero announced: {negative}")
    findings.figures["levels_announced"] = len(announced)
    dead_lettered = {
        f"{tp.topic}[{tp.partition}]": n
        for tp, n in (await end_offsets(stack.kafka_bootstrap, *DLQ_TOPICS)).items()
        if n
    }
    findings.expect(not dead_lettered, f"messages dead-lettered: {dead_lettered}")

    statuses = Counter(state["order"]["fulfillment_status"] for state in states)
    findings.figures.update(
        redelivered_copies=len(copied), orders=len(orders), statuses=dict(statuses), kills=[vars(k) for k in kills]
    )
    print(f"crash recovery figures: {findings.figures}")
    assert not findings.problems, "\n".join(findings.problems)
    # The scenario did what it says: stock ran out (holds), things shipped, kills hit live work.
    assert statuses["FULFILLED"] and statuses["ON_HOLD"], statuses
    assert any(kill.fulfillments_on_kafka < findings.figures["fulfillments"] for kill in kills), kills
    assert any(kill.lag for kill in kills), kills


async def test_order_paid_redelivered_and_re_sent_under_a_new_id_routes_and_reserves_once(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    platform = Platform(stack, http)
    tag = uuid.uuid4().hex[:8]
    sku, location_id = f"LAMP-{tag}", f"edge-{tag}"
    # Put last in priority; no other location has the sku.
    await platform.put("inventory", f"/locations/{location_id}", {"name": "edge"})
    await platform.stock_and_routing(location_id, sku, 10)
    await platform.put("fulfillment", "/settings", {"auto_fulfill": False})

    # A pending order at the orders service (which therefore emits no order.paid of its own);
    # the payment is announced here, as a misbehaving upstream would.
    order = await place_pending_order(platform, [physical(sku, 3)], f"edge+{tag}@example.com")
    snapshot = OrderSnapshot.model_validate({**(await platform.order(order.id) or {}), "financial_status": "paid"})
    paid = new_event("orders", "order.paid", order.id, OrderPaid(order=snapshot))
    retried = paid.model_copy(update={"id": str(uuid.uuid4())})
    async with TopicReader(stack.kafka_bootstrap, FULFILLMENT_TOPIC, INVENTORY_TOPIC) as kafka:
        copies = [(ORDERS_TOPIC, event.to_bytes(), order.id.encode()) for event in (paid, paid, retried, paid)]
        last = await publish(stack.kafka_bootstrap, copies)

        async def reserved() -> list[dict[str, Any]] | None:
            fos = await platform.fulfillment_orders(order.id)
            return fos if fos and all(fo["reservation_status"] == "RESERVED" for fo in fos) else None

        async def consumed(positions: dict[TopicPartition, int]) -> bool:
            return not await consumed_past(stack.kafka_bootstrap, positions)

        # Every copy was handled (offsets are committed after the handler: its effects are stored).
        await eventually(partial(consumed, last), timeout=30, interval=0.5)
        await eventually(reserved, timeout=30, interval=0.3)
        # And whatever fulfillment announced in answer was handled by inventory.
        answers = {TopicPartition(r.topic, r.partition): r.offset for r in kafka.records
                   if r.key == order.id.encode() and r.topic == FULFILLMENT_TOPIC}  # fmt: skip
        await eventually(partial(consumed, answers), timeout=30, interval=0.5)
        await eventually(lambda: "inventory.reserved" in kafka.types(order.id), timeout=30)
        fos = await platform.fulfillment_orders(order.id) or []
        created = [e for e in kafka.events(order.id) if e["type"] == "fulfillment_order.created"]
        reservations = [e for e in kafka.events(order.id) if e["type"] == "inventory.reserved"]

    assert [(fo["location_id"], fo["status"], fo["line_items"][0]["quantity"]) for fo in fos] == [
        (location_id, "OPEN", 3)
    ]
    assert {e["data"]["fulfillment_order"]["id"] for e in created} == {fos[0]["id"]}
    assert len(distinct_ids(created)) == 1, created
    assert len(distinct_ids(reservations)) == 1, reservations
    level = (await platform.get("inventory", f"/stock/{sku}"))["locations"][0]
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 3, 7)
    assert not any((await end_offsets(stack.kafka_bootstrap, *DLQ_TOPICS)).values()), "a copy was dead-lettered"
