"""Other teams read the platform's topics with the official CloudEvents SDK (issue 13: "the
official `cloudevents` Python SDK's Kafka reader (`from_kafka_event`, which detects the mode
itself) rejects 13 of 13 real messages as binary mode with no `source`": every message carried
a stray `ce_type` header beside the structured-mode value; dead-letter copies had an empty
content-type). Every event type an end-to-end flow produces is read here with the SDK's
structured reader and its auto-detecting Kafka reader, as a subscriber would."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.v1 import kafka as ce_kafka_v1

from deploy.local_stack import LocalStack
from shared.events import dataschema_of
from shared.messaging import CLOUDEVENTS_CONTENT_TYPE
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import Shop, digital, physical
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

TOPICS = ("orders.events.v1", "inventory.events.v1", "fulfillment.events.v1", "notifications.events.v1")
FLOW_TYPES = {
    "location.updated", "inventory.level_changed",
    "order.created", "order.paid", "order.cancelled", "order.fulfillment_status_changed",
    "fulfillment_order.created", "fulfillment_order.placed_on_hold", "fulfillment_order.hold_released",
    "fulfillment_order.closed", "fulfillment_order.cancelled", "fulfillment.created",
    "inventory.reserved", "inventory.committed", "inventory.released",
    "notification.sent",
}  # fmt: skip


def as_sdk_message(record: ConsumerRecord[bytes, bytes]) -> ce_kafka.KafkaMessage:
    """A record as the SDK's Kafka binding takes it (headers as a dict of bytes)."""
    return ce_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value or b"")


def read_with_every_sdk_reader(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """The event as each of the SDK's Kafka readers sees it; they must agree with the value."""
    message = as_sdk_message(record)
    detected = ce_kafka.from_kafka_event(message)  # detects binary or structured mode itself
    structured = ce_kafka.from_structured_event(message)
    legacy = ce_kafka_v1.from_structured(ce_kafka_v1.KafkaMessage(dict(record.headers), record.key, message.value))
    value = json.loads(message.value)
    for event in (detected, structured):
        assert event.get_attributes()["specversion"] == "1.0"
        assert (event.get_id(), event.get_source(), event.get_type()) == (value["id"], value["source"], value["type"])
        assert event.get_subject() == value["subject"] == (record.key or b"").decode()
        assert event.get_data() == value["data"]
    assert (legacy["id"], legacy["type"], legacy.data) == (value["id"], value["type"], value["data"])
    return dict(detected.get_attributes())


async def test_the_sdk_reads_every_event_type_of_the_flow_both_ways(stack: LocalStack, http: httpx.AsyncClient) -> None:
    shop = Shop(stack, http)
    async with TopicReader(stack.kafka_bootstrap, *TOPICS) as kafka:
        warehouse = await shop.location("warehouse")
        mug, ebook = shop.sku("MUG"), shop.sku("EBOOK")
        await shop.stock(warehouse, mug, 5)

        # Paid with a digital and a physical line: routed, reserved, the download link emailed.
        shipped = await shop.paid_order(digital(ebook), physical(mug, 1))
        fos = await shop.settle(shipped["id"], 2)
        parcel = next(fo for fo in fos if fo["kind"] == "shipping")
        held = await shop.post(f"/fulfillment-orders/{parcel['id']}/hold", {"reason": "OTHER", "note": "check"})
        assert held.status_code == 200, held.text
        assert (await shop.post(f"/fulfillment-orders/{parcel['id']}/release-hold")).status_code == 200
        tracking = {"numbers": ["1Z999"], "company": "UPS", "url": "https://ups.example.com/1Z999"}
        fulfilled = await shop.post(f"/fulfillment-orders/{parcel['id']}/fulfillments",
                                    {"tracking": tracking, "notify_customer": True})  # fmt: skip
        assert fulfilled.status_code == 201, fulfilled.text
        await shop.display_status(shipped["id"], "FULFILLED")

        # Paid, then cancelled with a restock and an email.
        cancelled = await shop.paid_order(physical(mug, 1))
        await shop.settle(cancelled["id"], 1)
        cancel = {"refund": "now", "restock": True, "notify_customer": True, "reason": "customer"}
        reply = await http.post(f"{stack.url('orders')}/orders/{cancelled['id']}/cancel", json=cancel)
        assert reply.status_code == 200, reply.text

        keys = {shipped["id"], cancelled["id"], mug, ebook, warehouse}

        def flow_records() -> list[ConsumerRecord[bytes, bytes]]:
            return [r for r in kafka.records if (r.key or b"").decode() in keys]

        def seen() -> set[str]:
            return {json.loads(r.value or b"")["type"] for r in flow_records()}

        def every_type_and_both_emails() -> bool:
            sent = [r for r in flow_records() if b'"notification.sent"' in (r.value or b"")]
            return seen() >= FLOW_TYPES and len(sent) >= 3

        await eventually(every_type_and_both_emails, timeout=60)

        records = flow_records()
        read = [read_with_every_sdk_reader(record) for record in records]
        assert {event["type"] for event in read} >= FLOW_TYPES
        for record, event in zip(records, read, strict=True):
            headers = dict(record.headers)
            assert headers["content-type"].decode() == CLOUDEVENTS_CONTENT_TYPE
            assert not [name for name in headers if name.lower().startswith("ce_")], headers
            assert event["dataschema"] == dataschema_of(event["type"])
            assert event["source"].startswith("urn:fulfillment-platform:"), event["source"]


async def test_a_dead_letter_keeps_its_content_type_and_the_sdk_still_reads_it(stack: LocalStack) -> None:
    """Issue 13: "Dead-letter copies have an empty content-type"."""
    key = f"misrouted-{uuid.uuid4()}"
    # An inventory event on the orders topic: valid CloudEvent, wrong topic, so it is dead-lettered.
    event: dict[str, Any] = {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:example:tests", "type": "inventory.released",
        "subject": key, "time": "2030-01-01T00:00:00Z", "datacontenttype": "application/json",
        "data": {"order_id": key, "fulfillment_order_id": "fo-1", "location_id": "wh-1", "lines": []},
    }  # fmt: skip
    async with TopicReader(stack.kafka_bootstrap, "orders.events.v1.dlq") as kafka:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            structured = [("content-type", CLOUDEVENTS_CONTENT_TYPE.encode())]
            await producer.send_and_wait("orders.events.v1", json.dumps(event).encode(), key=key.encode(),
                                         headers=structured)  # fmt: skip
        finally:
            await producer.stop()

        def dead_letters() -> list[ConsumerRecord[bytes, bytes]]:
            return [r for r in kafka.records if r.key == key.encode()]

        await eventually(lambda: len(dead_letters()) >= 1, timeout=30)
        for letter in dead_letters():
            kept = dict(letter.headers)
            assert kept["x-dlq-reason"] == b"wrong_topic"
            assert kept["content-type"].decode() == CLOUDEVENTS_CONTENT_TYPE
            assert ce_kafka.from_kafka_event(as_sdk_message(letter)).get_id() == event["id"]
