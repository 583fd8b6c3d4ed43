"""A stream of paid orders while services are SIGKILLed in quick succession (8 kills in 24 s),
with clients retrying under Idempotency-Keys as a checkout does: every key answers with exactly
one order, no order is created twice, every order ends with its fulfillment orders and its emails
once, and no outbox is left pending.

A stack of its own: its processes are killed with SIGKILL (no shutdown hooks, no last outbox pass).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from deploy.local_stack import LocalStack
from deploy.smtp_sink import SmtpSink
from tests.conftest import bearer, eventually, running_stack, smtp_server
from tests.e2e.test_crash_recovery import Findings, PlacedOrder, Platform, check_order, digital, physical, settled

pytestmark = pytest.mark.e2e

log = logging.getLogger(__name__)

KILLS = ("orders", "fulfillment", "orders", "inventory", "orders", "notifications", "orders", "fulfillment")
KILL_EVERY_SECONDS = 3.0  # 8 kills in 24 s, as in the probe
CLIENTS = 24
SERVICE_DATABASES = ("orders", "inventory", "fulfillment", "notifications")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpSink) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("kills"), SMTP_HOST=smtp.host, SMTP_PORT=str(smtp.port)) as local:
        yield local


async def place_until_answered(
    platform: Platform, key: str, body: dict[str, Any], deadline: float
) -> tuple[dict[str, Any], int]:
    """POST /orders as a checkout does: on a dropped connection, a 5xx or a 409 'still in
    progress', the same request again under the same key. Returns the answer and the attempts."""
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            reply = await platform.http.post(
                platform.url("orders", "/orders"), json=body, headers={"Idempotency-Key": key}, timeout=5
            )
        except httpx.TransportError:
            await asyncio.sleep(0.3)
            continue
        if reply.status_code == 201:
            return dict(reply.json()), attempts
        assert reply.status_code in (409, 500, 502, 503), f"{key}: {reply.status_code} {reply.text[:300]}"
        await asyncio.sleep(0.3)
    raise AssertionError(f"{key} got no answer in time after {attempts} attempts")


async def pending_outboxes(mongodb_uri: str) -> dict[str, int]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        found: dict[str, int] = {}
        for name in SERVICE_DATABASES:
            database = client[name]
            for collection in await database.list_collection_names():
                count = await database[collection].count_documents({"outbox_pending": True})
                if count:
                    found[f"{name}.{collection}"] = count
        return found
    finally:
        await client.close()


async def orders_of(mongodb_uri: str, tag: str) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        cursor = client["orders"]["orders"].find({"customer.name": f"Buyer {tag}"}, {"_id": 1, "customer": 1})
        return [doc async for doc in cursor]
    finally:
        await client.close()


async def test_orders_retried_under_idempotency_keys_through_8_kills_in_24s_are_created_once(
    stack: LocalStack, smtp: SmtpSink
) -> None:
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack)) as http:
        platform = Platform(stack, http)
        tag = uuid.uuid4().hex[:8]
        mug, ebook, location = f"MUG-{tag}", f"EBOOK-{tag}", f"wh-{tag}"
        await platform.put("inventory", f"/locations/{location}", {"name": "Kills", "priority": 1})
        await platform.stock_and_routing(location, mug, CLIENTS * 2)
        await platform.put("fulfillment", "/settings", {"auto_fulfill": True, "sweep_interval_seconds": 1})

        def order_body(i: int) -> dict[str, Any]:
            lines = ([digital(ebook)], [physical(mug, 1)], [digital(ebook), physical(mug, 1)])[i % 3]
            return {
                "customer": {"email": f"buyer+{tag}-{i}@example.com", "name": f"Buyer {tag}"},
                "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "zip": "11122",
                                     "country_code": "SE"},
                "currency": "SEK", "financial_status": "paid", "line_items": lines,
            }  # fmt: skip

        started = time.monotonic()
        deadline = started + 150

        burst_size = 3
        spread = CLIENTS - burst_size * KILLS.count("orders")

        async def client(i: int, delay: float = 0.0) -> tuple[dict[str, Any], int]:
            await asyncio.sleep(delay)
            return await place_until_answered(platform, f"checkout-{tag}-{i}", order_body(i), deadline)

        # Half the checkouts arrive spread over the kills; the other half come in bursts that orders
        # is killed in the middle of (a few ms after they were sent), to hit the window between the
        # order's write and its key being marked done.
        checkouts = [
            asyncio.create_task(client(i, i * len(KILLS) * KILL_EVERY_SECONDS / spread)) for i in range(spread)
        ]

        async def killer() -> None:
            for service in KILLS:
                await asyncio.sleep(KILL_EVERY_SECONDS)
                if service == "orders":
                    first = len(checkouts)
                    checkouts.extend(asyncio.create_task(client(first + n)) for n in range(burst_size))
                    await asyncio.sleep(random.uniform(0.005, 0.04))
                [child] = [c for c in stack.children if c.name == service]
                log.warning("SIGKILL %s at %.1fs", service, time.monotonic() - started)
                stack.kill_child(child)
                stack.start_service(service)

        await killer()
        answers = await asyncio.gather(*checkouts)
        assert len(answers) == CLIENTS
        for service in SERVICE_DATABASES:
            await eventually(functools.partial(platform.ready, service), timeout=60, interval=0.3)

        # Every key answers with exactly one order, now and on any later retry.
        first_ids = [answer["id"] for answer, _ in answers]
        assert len(set(first_ids)) == CLIENTS, "two keys were answered with the same order"
        for i, answer_id in enumerate(first_ids):
            again, _ = await place_until_answered(platform, f"checkout-{tag}-{i}", order_body(i), time.monotonic() + 30)
            assert again["id"] == answer_id, f"key {i} answered {answer_id} first and {again['id']} later"
        stored = await orders_of(stack.mongodb_uri, tag)
        assert sorted(doc["_id"] for doc in stored) == sorted(first_ids), "an order was created twice"

        # Every order ends with its fulfillment orders and its emails, once.
        orders = [PlacedOrder(answer["id"], answer["customer"]["email"], answer["line_items"]) for answer, _ in answers]
        waiting: dict[str, str] = {}

        async def all_settled() -> list[dict[str, Any]] | None:
            states = [await settled(platform, smtp, order) for order in orders]
            waiting.clear()
            waiting.update({o.id: s for o, s in zip(orders, states, strict=True) if isinstance(s, str)})
            return None if waiting else [s for s in states if isinstance(s, dict)]

        try:
            states: list[dict[str, Any]] = await eventually(all_settled, timeout=120, interval=1)
        except AssertionError:
            raise AssertionError(f"not settled after the kills: {waiting}") from None
        findings = Findings(figures={"emails": 0, "distinct_emails": 0, "resent_same_message_id": 0})
        for order, state in zip(orders, states, strict=True):
            check_order(findings, order, state, smtp)
        assert not findings.problems, "\n".join(findings.problems)

        # No outbox is left pending.
        await eventually(lambda: _nothing_pending(stack.mongodb_uri), timeout=30, interval=0.5)
        log.warning(
            "kills test: %d orders, %d attempts in all (max %d for one key), %s; settled at %.1fs",
            CLIENTS, sum(n for _, n in answers), max(n for _, n in answers), findings.figures,
            time.monotonic() - started,
        )  # fmt: skip


async def _nothing_pending(mongodb_uri: str) -> bool:
    return not await pending_outboxes(mongodb_uri)
