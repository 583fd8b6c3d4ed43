"""The AsyncAPI documents the services serve, checked as a subscriber would (issue 13: "AsyncAPI per
service with a payload schema for every message sent and received, the third-party fulfillment
service's answers included, keys and headers described ... one combined document of the whole
platform for subscribers, served and committed (docs/asyncapi.yaml), validated by the official
parser in the tests"; done when "every produced message validates against its AsyncAPI schema")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import ConsumerRecord

from deploy import contracts
from deploy.local_stack import LocalStack
from shared.asyncapi import PLATFORM_CONSUMES
from shared.catalog import CATALOG
from shared.topics import TOPICS
from tests.asyncapi_tools import Messages, errors, official_parser_diagnostics
from tests.conftest import SERVICES, eventually
from tests.e2e.test_fulfillment_flows import Shop, digital, physical
from tests.e2e.test_fulfillment_service_workflow import ThirdParty, fo_where
from tests.kafka_tools import TopicReader

pytestmark = pytest.mark.e2e

EVERY_TOPIC = tuple(name for topic in TOPICS for name in (topic.name, topic.dlq))


async def test_every_served_document_parses_and_the_platform_one_is_the_committed_one(
    stack: LocalStack, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    documents: list[Path] = []
    read: set[str] = set()
    for name in SERVICES:
        reply = await http.get(stack.url(name) + "/asyncapi")
        assert reply.status_code == 200, reply.text
        document = reply.json()
        assert document["defaultContentType"] == "application/cloudevents+json"
        for operation in document["operations"].values():
            channel = operation["channel"]["$ref"].removeprefix("#/channels/")
            if operation["action"] == "receive":
                read.add(channel)
                assert operation["messages"], f"{name} receives nothing on {channel}"
            for ref in operation["messages"]:
                message = document["channels"][channel]["messages"][ref["$ref"].rsplit("/", 1)[1]]
                target = message["$ref"].rsplit("/", 1)[1]
                payload = document["components"]["messages"][target]["payload"]
                assert payload != {"type": "null"} and payload["$ref"].startswith("#/components/schemas/")
        page = await http.get(stack.url(name) + "/asyncapi/ui")
        assert page.status_code == 200 and f"{name} service" in page.text
        documents.append(tmp_path / f"{name}.json")
        documents[-1].write_text(reply.text)
    assert read == {topic.name for topic in PLATFORM_CONSUMES}

    served = await http.get(stack.url("fulfillment") + "/asyncapi.yaml")
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/yaml")
    assert served.text == contracts.ASYNCAPI.read_text()
    documents.append(tmp_path / "platform.yaml")
    documents[-1].write_text(served.text)

    found = official_parser_diagnostics(*documents)
    assert {path: errors(found[str(path)]) for path in documents} == {path: [] for path in documents}


async def test_every_message_of_a_flow_validates_against_the_platform_document(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    """Orders paid, held, fulfilled, emailed and cancelled, and one shipped by a third-party
    fulfillment service: each message read from Kafka, with its headers and key, against the schema
    of its type on its topic in docs/asyncapi.yaml."""
    shop = Shop(stack, http)
    service_id = f"asyncapi-3pl-{shop.tag}"
    async with TopicReader(stack.kafka_bootstrap, *EVERY_TOPIC) as kafka:
        warehouse = await shop.location("warehouse")
        mug, ebook, boots = shop.sku("MUG"), shop.sku("EBOOK"), shop.sku("BOOTS")
        await shop.stock(warehouse, mug, 5)

        shipped = await shop.paid_order(digital(ebook), physical(mug, 1))
        parcel = next(fo for fo in await shop.settle(shipped["id"], 2) if fo["kind"] == "shipping")
        assert (await shop.post(f"/fulfillment-orders/{parcel['id']}/hold", {"reason": "OTHER"})).status_code == 200
        assert (await shop.post(f"/fulfillment-orders/{parcel['id']}/release-hold")).status_code == 200
        tracking = {"numbers": ["1Z999"], "company": "UPS", "url": "https://ups.example.com/1Z999"}
        fulfilled = await shop.post(f"/fulfillment-orders/{parcel['id']}/fulfillments",
                                    {"tracking": tracking, "notify_customer": True})  # fmt: skip
        assert fulfilled.status_code == 201, fulfilled.text

        cancelled = await shop.paid_order(physical(mug, 1))
        await shop.settle(cancelled["id"], 1)
        cancel = {"refund": "now", "restock": True, "notify_customer": True, "reason": "customer"}
        assert (await http.post(f"{stack.url('orders')}/orders/{cancelled['id']}/cancel", json=cancel)).is_success

        # A third-party fulfillment service is asked, accepts and ships (its answers signed).
        acme = ThirdParty(shop, kafka, service_id)
        outsourced = await shop.location("acme", fulfillment_service=service_id)
        await shop.stock(outsourced, boots, 3)
        by_service = await shop.paid_order(physical(boots, 1))
        fo = (await shop.settle(by_service["id"], 1))[0]
        assert (await shop.post(f"/fulfillment-orders/{fo['id']}/submit-request", {})).is_success
        await acme.request(fo["id"])
        await acme.answer("fulfillment_service.request_accepted", fo, message="on it")
        await fo_where(shop, fo["order_id"], request_status="ACCEPTED")
        await acme.answer("fulfillment_service.shipped", fo, tracking={"numbers": ["ACME-1"]})
        await fo_where(shop, fo["order_id"], status="CLOSED")

        keys = {shipped["id"], cancelled["id"], by_service["id"], mug, ebook, boots, warehouse, outsourced, service_id}

        def flow() -> list[ConsumerRecord[bytes, bytes]]:
            return [r for r in kafka.records if (r.key or b"").decode() in keys]

        def emails_and_the_shipment_are_out() -> bool:
            types = [json.loads(r.value or b"{}").get("type") for r in flow()]
            return types.count("notification.sent") >= 4 and "fulfillment.created" in types

        await eventually(emails_and_the_shipment_are_out, timeout=60)

        document = yaml.safe_load(contracts.ASYNCAPI.read_text())
        checker = Messages(document)
        checked: dict[str, set[str]] = {}
        problems: list[str] = []
        for record in flow():
            assert not record.topic.endswith(".dlq"), f"dead-lettered: {dict(record.headers)}"
            event: dict[str, Any] = json.loads(record.value or b"{}")
            name = event["type"]
            channel = document["channels"][record.topic]
            if name not in channel["messages"]:
                problems.append(f"{name} is not documented on {record.topic}")
                continue
            headers = {key: value.decode() for key, value in record.headers}
            where = f"{record.topic} {name} {event['id']}"
            problems += [f"{where} payload {p}" for p in checker.problems(name, "payload", event)]
            problems += [f"{where} headers {p}" for p in checker.problems(name, "headers", headers)]
            if (record.key or b"").decode() != event["subject"]:
                problems.append(f"{where}: key {record.key!r} is not the subject {event['subject']!r}")
            checked.setdefault(record.topic, set()).add(name)
        assert problems == []

    assert set(checked) == {
        "orders.events.v1", "inventory.events.v1", "fulfillment.events.v1", "notifications.events.v1",
        "fulfillment.requests.v1", "fulfillment.responses.v1",
    }  # fmt: skip
    seen = set().union(*checked.values())
    assert len(seen) >= 20, sorted(seen)
    assert seen <= set(CATALOG)
