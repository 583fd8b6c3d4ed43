"""Limits over the whole stack, as an attacker or a broken clock would probe them (issue 8):

- "The 1 MB body limit is checked on Content-Length only (chunked bodies of 10 MB are parsed)
  and inventory and fulfillment have none."
- "A future-dated `inventory.level_changed` (2099) freezes fulfillment's view of that stock,
  because newer snapshots are ignored as older."
- "Restarting notifications invalidates every link under `make run`: no DOWNLOAD_LINK_SECRET is
  set, so each process signs with a random key (a never-used link got 403 after a restart)."
"""

from __future__ import annotations

import json
import re
import stat
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.local_stack import LocalStack
from shared.topics import INVENTORY_EVENTS
from tests.conftest import TEST_ENV, eventually, smtp_server
from tests.e2e.test_notifications_emails import EBOOK_URL, fulfillment_event, mail_to, place_order, publish, text_of
from tests.kafka_tools import TopicReader, produce_raw

pytestmark = pytest.mark.e2e

TEN_MB = 10 * 1024 * 1024
TWO_MB = 2 * 1024 * 1024


async def chunked(size: int) -> AsyncIterator[bytes]:
    """A JSON-looking body of `size` bytes with no Content-Length: sent with chunked encoding."""
    yield b'{"note": "'
    sent, chunk = 0, b"x" * 65_536
    while sent < size:
        yield chunk
        sent += len(chunk)
    yield b'"}'


def too_large(reply: httpx.Response) -> None:
    assert reply.status_code == 413, reply.text[:300]
    error = reply.json()["error"]
    assert error["code"] == "payload_too_large" and "1000000 bytes" in error["message"]


BODY_ROUTES = [
    ("orders", "POST", "/orders"),
    ("inventory", "PUT", "/stock/limits-wh/LIMITS-1"),
    ("fulfillment", "POST", "/bulk-jobs"),
    ("fulfillment", "PUT", "/settings"),
]


@pytest.mark.parametrize(("service", "method", "path"), BODY_ROUTES)
async def test_a_chunked_body_of_10_mb_is_refused_on_every_service(
    stack: LocalStack, http: httpx.AsyncClient, service: str, method: str, path: str
) -> None:
    url = stack.url(service) + path
    headers = {"content-type": "application/json"}
    too_large(await http.request(method, url, content=chunked(TEN_MB), headers=headers))
    # The Idempotency-Key middleware reads the body before the route does: the limit comes first.
    keyed = {**headers, "idempotency-key": f"limits-{uuid.uuid4()}"}
    too_large(await http.request(method, url, content=chunked(TEN_MB), headers=keyed))


@pytest.mark.parametrize("service", ["orders", "inventory", "fulfillment", "notifications"])
async def test_a_declared_body_over_the_limit_is_refused_on_every_service(
    stack: LocalStack, http: httpx.AsyncClient, service: str
) -> None:
    path = {"orders": "/orders", "inventory": "/locations/limits-wh", "fulfillment": "/bulk-jobs"}.get(
        service, "/notifications?order_id=x"
    )
    method = {"inventory": "PUT", "notifications": "GET"}.get(service, "POST")
    body = b'{"note": "' + b"x" * TWO_MB + b'"}'
    too_large(await http.request(method, stack.url(service) + path, content=body))


async def test_a_body_just_under_the_limit_is_still_read(stack: LocalStack, http: httpx.AsyncClient) -> None:
    body = {"name": "x" * 999_000}  # read whole, then refused for what it says
    reply = await http.put(stack.url("inventory") + "/locations/limits-wh", json=body)
    assert reply.status_code == 422 and reply.json()["error"]["details"][0]["field"] == "name"


# --- stock snapshots -----------------------------------------------------------------------


async def test_a_future_dated_level_changed_does_not_freeze_fulfillments_view_of_the_stock(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    location, sku = f"wh-{uuid.uuid4().hex[:8]}", f"SKU-{uuid.uuid4().hex[:8]}"
    assert (await http.put(f"{stack.url('inventory')}/locations/{location}", json={"name": "Limits"})).is_success
    stock_url = f"{stack.url('inventory')}/stock/{location}/{sku}"

    async def routing_sees(available: int) -> bool:
        reply = await http.get(f"{stack.url('fulfillment')}/routing/stock/{sku}")
        seen = {entry["location_id"]: entry["available"] for entry in reply.json()["locations"]}
        return seen.get(location) == available

    async with TopicReader(stack.kafka_bootstrap, INVENTORY_EVENTS.name) as kafka:
        assert (await http.put(stock_url, json={"on_hand": 5})).status_code == 200
        await eventually(lambda: routing_sees(5), timeout=30)
        [real] = await eventually(lambda: [e for e in kafka.events(sku) if e["type"] == "inventory.level_changed"])

        # The same stock, dated 2099: once as inventory sends it now, once as an older producer did.
        forged = {**real["data"], "on_hand": 42, "available": 42}
        unnumbered = {k: v for k, v in forged.items() if k != "seq"}
        for data in (unnumbered, forged):
            event = {**real, "id": str(uuid.uuid4()), "time": "2099-01-01T00:00:00Z", "data": data}
            await produce_raw(stack.kafka_bootstrap, INVENTORY_EVENTS.name, json.dumps(event).encode(), sku.encode())

        # Newer stock after it must still reach fulfillment's view.
        assert (await http.put(stock_url, json={"on_hand": 7})).status_code == 200
        await eventually(lambda: routing_sees(7), timeout=30)

        def numbered_by_inventory() -> list[int]:
            return [e["data"]["seq"] for e in kafka.events(sku) if e["time"] < "2099"]

        numbers = await eventually(lambda: len(numbered_by_inventory()) == 2 and numbered_by_inventory())
        assert numbers == [real["data"]["seq"], real["data"]["seq"] + 1]  # inventory numbers each change


# --- the download-link secret under `make run` -----------------------------------------------


async def test_a_link_made_before_a_notifications_restart_still_downloads_after_it(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DOWNLOAD_LINK_SECRET anywhere, as under `make run`: the stack keeps one of its own."""
    monkeypatch.delenv("DOWNLOAD_LINK_SECRET", raising=False)
    env = {name: value for name, value in TEST_ENV.items() if name != "DOWNLOAD_LINK_SECRET"}
    with smtp_server() as sink:
        local = LocalStack(
            data_dir=tmp_path_factory.mktemp("link-secret"), kafka_port=0, mongo_port=0, smtp_port=0,
            service_ports={"orders": 0, "notifications": 0}, persistent_store=False, use_environment=False,
            extra_env={**env, "SMTP_HOST": sink.host, "SMTP_PORT": str(sink.port)},
        )  # fmt: skip
        try:
            local.start_infrastructure()
            local.start_services()
            local.wait_until_ready(90)
            async with httpx.AsyncClient(timeout=10, headers=local.admin_headers()) as http:
                address = f"buyer+{uuid.uuid4().hex[:10]}@example.com"
                order = await place_order(local, http, address, digital=True)
                await publish(local, fulfillment_event(order, skus=("EBOOK-1",), notify=False))
                [mail] = await eventually(lambda: mail_to(sink, address), timeout=30)
                [link] = re.findall(r"http://\S+/downloads/\S+", text_of(mail))

                [notifications] = [child for child in local.children if child.name == "notifications"]
                local.stop_child(notifications)
                local.start_service("notifications")
                local.wait_until_ready(60)

                reply = await http.get(link, follow_redirects=False)
                assert reply.status_code == 302, reply.text
                assert reply.headers["location"] == EBOOK_URL
            secret_file = local.link_secret_path
            assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
            assert secret_file.read_text().strip() == local.service_env("notifications", 0)["DOWNLOAD_LINK_SECRET"]
        finally:
            local.stop()
