"""Issue #8's input findings over the whole stack, at every entrance (HTTP and Kafka):

- "Download links redirect anywhere": unsafe asset and tracking URLs are refused with 422 over
  HTTP and dead-lettered with the reason over Kafka, so no link, redirect or email carries them.
- "NUL and terminal control characters are stored and copied into emails": refused with 422
  naming the field, in orders, inventory and fulfillment request bodies.
- "An internationalised address never fails and never sends": `用户@例子.广告` is emailed.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from deploy.smtp_sink import SmtpSink
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop, physical
from tests.e2e.test_fulfillment_service_workflow import RESPONSES, SERVICE, ThirdParty, fo_where
from tests.e2e.test_orders_flows import CANCEL, new_order
from tests.kafka_tools import TopicReader, produce_raw

pytestmark = pytest.mark.e2e

ORDERS_DLQ = "orders.events.v1.dlq"
RESPONSES_DLQ = f"{RESPONSES}.dlq"


def problems(reply: httpx.Response) -> dict[str, str]:
    """The 422's invalid fields and their reasons."""
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request"
    return {detail["field"]: detail["reason"] for detail in error["details"]}


async def order_count(http: httpx.AsyncClient, stack: LocalStack) -> int:
    return int((await http.get(stack.url("orders") + "/orders", params={"limit": 1})).json()["total"])


def digital_line(url: str) -> dict[str, Any]:
    return {"sku": "EBOOK-1", "title": "E-book", "quantity": 1, "unit_price": "5.00", "requires_shipping": False,
            "digital_asset_url": url}  # fmt: skip


def dead_letter(kafka: TopicReader, topic: str, event_id: str, group: str) -> dict[str, str] | None:
    for record in kafka.records:
        if record.topic != topic or json.loads(record.value or b"{}").get("id") != event_id:
            continue
        headers = {key: value.decode() for key, value in record.headers}
        if headers.get("x-dlq-consumer-group") == group:
            return headers
    return None


# --- download links redirect anywhere ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8003/settings", "must be an https URL"),
        ("https://127.0.0.1:8003/settings", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://shop.example@evil.example/", "user name or password"),
        ("javascript:alert(document.cookie)", "not javascript:"),
        ("data:text/html,<script>alert(1)</script>", "not data:"),
        ("https://metadata.google.internal/computeMetadata/v1/", "internal host"),
    ],
)
async def test_post_orders_refuses_a_digital_asset_url_a_download_link_must_not_redirect_to(
    stack: LocalStack, http: httpx.AsyncClient, url: str, reason: str
) -> None:
    before = await order_count(http, stack)
    body = new_order(paid=True, line_items=[digital_line(url)], shipping_address=None)
    found = problems(await http.post(stack.url("orders") + "/orders", json=body))
    assert list(found) == ["line_items.0.digital_asset_url"]
    assert reason in found["line_items.0.digital_asset_url"]
    assert await order_count(http, stack) == before


async def test_fulfillment_refuses_unsafe_tracking_urls_when_shipping_and_when_updating(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    shop = Shop(stack, http)
    warehouse = await shop.location("warehouse")
    mug = shop.sku("MUG")
    await shop.stock(warehouse, mug, 2)
    order = await shop.paid_order(physical(mug, 1))
    (fo,) = await shop.settle(order["id"], 1)

    path = f"/fulfillment-orders/{fo['id']}/fulfillments"
    bad = await shop.post(
        path, {"tracking": {"numbers": ["1Z1"], "url": "javascript:alert(1)"}, "notify_customer": True}
    )
    assert "not javascript:" in problems(bad)["tracking.url"]
    bad = await shop.post(path, {"tracking": {"numbers": ["1Z1"], "urls": ["http://169.254.169.254/"]}})
    assert "https" in problems(bad)["tracking.urls.0"]
    assert (await shop.fulfillment_orders(order["id"]))[0]["fulfillments"] == []  # nothing shipped

    shipped = await shop.post(path, {"tracking": {"numbers": ["1Z1"], "company": "UPS"}})
    assert shipped.status_code == 201, shipped.text
    tracking_path = f"/fulfillments/{shipped.json()['id']}/tracking"
    for url, field in (("https://carrier.example@evil.example/t", "url"), ("https://[::1]/t", "url")):
        assert field in problems(await shop.post(tracking_path, {"numbers": ["1Z2"], field: url}))
    assert "urls.1" in problems(
        await shop.post(tracking_path, {"numbers": ["1Z2"], "urls": ["https://track.example/1Z2", "data:,x"]})
    )
    good = await shop.post(tracking_path, {"numbers": ["1Z2"], "url": "https://track.example/1Z2"})
    assert good.status_code == 200, good.text
    assert good.json()["tracking"]["urls"] == ["https://track.example/1Z2"]


async def test_a_forged_shipped_answer_with_a_javascript_tracking_url_is_dead_lettered_with_the_reason(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """Over Kafka a tracking URL of `javascript:alert(...)` was accepted and put into a shipping
    email. Now the answer goes to the DLQ saying why, nothing ships, no email goes out, and the
    consumer carries on with the service's next (good) answer."""
    shop = Shop(stack, http)
    async with TopicReader(stack.kafka_bootstrap, FULFILLMENT_TOPIC, RESPONSES_DLQ) as kafka:
        acme = ThirdParty(shop, kafka)
        location = await shop.location("acme", fulfillment_service=SERVICE)
        await shop.stock(location, shop.sku("MUG"), 2)
        order = await shop.paid_order(physical(shop.sku("MUG"), 1))
        (fo,) = await shop.settle(order["id"], 1)
        submitted = await shop.post(f"/fulfillment-orders/{fo['id']}/submit-request",
                                    {"message": "Gift wrap, please.\nLeave it at the door."})  # fmt: skip
        assert submitted.status_code == 200, submitted.text  # a multi-line message is fine
        await acme.answer("fulfillment_service.request_accepted", fo)
        await fo_where(shop, order["id"], request_status="ACCEPTED")

        forged = await acme.answer(
            "fulfillment_service.shipped", fo,
            tracking={"numbers": ["ACME-1"], "company": "Acme", "urls": ["javascript:alert(document.cookie)"]},
        )  # fmt: skip
        headers = await eventually(lambda: dead_letter(kafka, RESPONSES_DLQ, forged, "fulfillment"), timeout=30)
        assert headers["x-dlq-reason"] == "malformed"
        assert "tracking.urls.0: URL must be an https URL, not javascript:" in headers["x-dlq-error"]

        await acme.answer("fulfillment_service.shipped", fo,
                          tracking={"numbers": ["ACME-1"], "urls": ["https://track.example/ACME-1"]})  # fmt: skip
        closed = await fo_where(shop, order["id"], status="CLOSED")
        assert [f["tracking"]["urls"] for f in closed["fulfillments"]] == [["https://track.example/ACME-1"]]


async def test_a_forged_order_paid_with_a_data_asset_url_is_dead_lettered_and_never_fulfilled(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    order_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat()
    line = {**digital_line("data:text/html,<script>alert(1)</script>"), "id": str(uuid.uuid4())}
    order = {"id": order_id, "customer": {"email": "buyer@example.com", "name": "Ada"}, "currency": "SEK",
             "financial_status": "paid", "line_items": [line], "created_at": now}  # fmt: skip
    event_id = str(uuid.uuid4())
    event = {"specversion": "1.0", "id": event_id, "source": "orders", "type": "order.paid", "time": now,
             "subject": order_id, "datacontenttype": "application/json", "data": {"order": order}}  # fmt: skip
    async with TopicReader(stack.kafka_bootstrap, ORDERS_DLQ) as kafka:
        await produce_raw(stack.kafka_bootstrap, "orders.events.v1", json.dumps(event).encode(), order_id.encode())
        for group in ("fulfillment", "notifications"):

            def dead_lettered_by(group: str = group) -> dict[str, str] | None:
                return dead_letter(kafka, ORDERS_DLQ, event_id, group)

            headers = await eventually(dead_lettered_by, timeout=30)
            assert headers["x-dlq-reason"] == "malformed"
            assert "order.line_items.0.digital_asset_url: URL must be an https URL, not data:" in headers["x-dlq-error"]
    reply = await http.get(f"{stack.url('fulfillment')}/fulfillment-orders", params={"order_id": order_id})
    assert reply.json()["items"] == []


# --- control characters -----------------------------------------------------------------------


async def test_nul_and_terminal_control_characters_are_refused_naming_the_field(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    before = await order_count(http, stack)
    orders = stack.url("orders") + "/orders"
    reply = await http.post(orders, json=new_order(customer={"email": "buyer@example.com", "name": "Ada\x00Buyer"}))
    assert "control character (U+0000 NUL)" in problems(reply)["customer.name"]
    address = {"address1": "Storgatan 1\x1b[2J\x1b[H", "city": "Stockholm", "country_code": "SE"}
    assert "shipping_address.address1" in problems(await http.post(orders, json=new_order(shipping_address=address)))
    lines = [{"sku": "MUG-1", "title": "Mug\r\nBcc: everyone@example.com", "quantity": 1, "unit_price": "1.00"}]
    assert "line_items.0.title" in problems(await http.post(orders, json=new_order(line_items=lines)))
    assert await order_count(http, stack) == before

    shop = Shop(stack, http)
    location = f"ctl-{shop.tag}"
    inventory = stack.url("inventory")
    assert "name" in problems(await http.put(f"{inventory}/locations/{location}", json={"name": "Main\x07"}))
    assert (await http.get(f"{inventory}/locations/{location}")).status_code == 404  # nothing stored

    warehouse = await shop.location("warehouse")
    await shop.stock(warehouse, shop.sku("MUG"), 1)
    adjust = await http.post(f"{inventory}/stock/{warehouse}/{shop.sku('MUG')}/adjustments",
                             json={"delta": 1, "reason": "recount\x9b31m"})  # fmt: skip
    assert "reason" in problems(adjust)
    order = await shop.paid_order(physical(shop.sku("MUG"), 1))
    (fo,) = await shop.settle(order["id"], 1)
    hold = await shop.post(f"/fulfillment-orders/{fo['id']}/hold", {"reason": "OTHER", "note": "call\x00buyer"})
    assert "note" in problems(hold)
    ship = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {"tracking": {"numbers": ["1Z\x1b"]}})
    assert "item 0 contains a control character" in problems(ship)["tracking.numbers"]
    assert (await shop.fulfillment_orders(order["id"]))[0]["holds"] == []


# --- an internationalised address -------------------------------------------------------------


async def test_an_internationalised_address_is_emailed(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    """`用户@例子.广告` was accepted, building the email raised UnicodeEncodeError and the
    notification stayed pending forever. Now it is sent (SMTPUTF8) and recorded sent."""
    address = f"用户{uuid.uuid4().hex[:6]}@例子.广告"
    reply = await http.post(stack.url("orders") + "/orders",
                            json=new_order(customer={"email": address, "name": "李雷"}))  # fmt: skip
    assert reply.status_code == 201, reply.text
    order_id = reply.json()["id"]
    cancelled = await http.post(f"{stack.url('orders')}/orders/{order_id}/cancel",
                                json={**CANCEL, "notify_customer": True})  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text

    [mail] = await eventually(lambda: [m for m in smtp_sink.messages() if address in m.rcpt_tos], timeout=30)
    assert f"<{address}>".encode() in mail.raw

    async def recorded_sent() -> dict[str, Any] | None:
        listed = await http.get(stack.url("notifications") + "/notifications", params={"order_id": order_id})
        items = [n for n in listed.json()["items"] if n["type"] == "order_cancelled"]
        return items[0] if items and items[0]["status"] == "sent" else None

    notification = await eventually(recorded_sent, timeout=30)
    assert (notification["to"], notification["attempts"], notification["error"]) == (address, 1, None)
