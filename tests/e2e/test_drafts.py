"""A draft (an order placed without its customer) over the whole stack: what fulfillment would
ship by itself waits for the customer, and goes out to them once the merchant adds them."""

from __future__ import annotations

import uuid

import httpx
import pytest

from deploy.local_stack import LocalStack
from deploy.smtp_sink import SmtpSink
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import Shop, digital
from tests.e2e.test_notifications_emails import mail_to, text_of

pytestmark = pytest.mark.e2e


async def test_a_paid_drafts_download_links_wait_for_its_customer_and_then_reach_them(
    stack: LocalStack, http: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    """Before, a paid draft's digital lines shipped at once and their download links were emailed to
    nobody (no address: failed for good), never again once the draft got its customer."""
    shop = Shop(stack, http)
    body = {"currency": "SEK", "financial_status": "paid", "line_items": [digital(shop.sku("EBOOK"))]}
    placed = await shop.http.post(f"{shop.stack.url('orders')}/orders", json=body)
    assert placed.status_code == 201 and placed.json()["warehouse_status"] == "draft", placed.text
    order_id = placed.json()["id"]
    (fo,) = await shop.settle(order_id, 1)
    assert (fo["status"], fo["fulfillments"]) == ("OPEN", []), "nothing ships to nobody"

    email = f"late+{uuid.uuid4().hex[:10]}@example.com"
    given = await shop.http.patch(
        f"{shop.stack.url('orders')}/orders/{order_id}", json={"customer": {"email": email, "name": "Late Buyer"}}
    )
    assert given.status_code == 200, given.text

    [received] = await eventually(lambda: mail_to(smtp_sink, email), timeout=30)
    assert "/downloads/" in text_of(received)
    (closed,) = await shop.live(order_id)
    assert closed["status"] == "CLOSED"
    await shop.display_status(order_id, "FULFILLED")
