"""A third-party fulfillment service end to end, played with plain aiokafka: it reads its
requests on fulfillment.requests.v1 (keyed by its id) and publishes its answers as plain
CloudEvents JSON on fulfillment.responses.v1, each signed with its own key (the `authtoken`
attribute), as a real 3PL integration would. Answers that are not provably the location's own
service's are dead-lettered with the reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from deploy.local_stack import LocalStack
from shared.events import ANSWER_PROOF, CloudEvent
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import FULFILLMENT_TOPIC, Shop, physical
from tests.kafka_tools import TopicReader, produce_raw

pytestmark = pytest.mark.e2e

SERVICE = "acme-3pl"
REQUESTS = "fulfillment.requests.v1"
RESPONSES = "fulfillment.responses.v1"


class ThirdParty:
    """The fulfillment service's side: what it was asked, and its answers."""

    def __init__(self, shop: Shop, kafka: TopicReader, service_id: str = SERVICE) -> None:
        self.shop = shop
        self.kafka = kafka
        self.service_id = service_id

    async def request(self, fo_id: str, event_type: str = "fulfillment_service.fulfillment_requested") -> Any:
        """The request about this fulfillment order, read on the service's key."""

        def found() -> Any:
            for record in self.kafka.records:
                if record.topic != REQUESTS or record.key != self.service_id.encode():
                    continue
                event = json.loads(record.value or b"{}")
                if event["type"] == event_type and event["data"]["fulfillment_order"]["id"] == fo_id:
                    return event
            return None

        return await eventually(found, timeout=30)

    async def answer(
        self,
        event_type: str,
        fo: dict[str, Any],
        event_id: str | None = None,
        *,
        proof: str | None = None,
        signed: bool = True,
        **data: Any,
    ) -> str:
        """Publish an answer, signed with this service's own key (or with `proof` as its
        authtoken, or unsigned): what any Kafka producer could send."""
        event_id = event_id or str(uuid.uuid4())
        event = {
            "specversion": "1.0", "id": event_id, "source": self.service_id, "type": event_type,
            "time": datetime.now(UTC).isoformat(), "subject": fo["order_id"], "datacontenttype": "application/json",
            "data": {"fulfillment_order_id": fo["id"], "fulfillment_service": self.service_id, **data},
        }  # fmt: skip
        if proof is not None:
            event[ANSWER_PROOF] = proof
        elif signed:
            assert self.shop.stack.auth is not None
            event = self.shop.stack.auth.sign_answer(CloudEvent.model_validate(event), self.service_id).model_dump(
                mode="json"
            )
        await produce_raw(
            self.shop.stack.kafka_bootstrap, RESPONSES, json.dumps(event).encode(), fo["order_id"].encode()
        )
        return event_id

    async def dead_letter(self, event_id: str) -> dict[str, str]:
        """The headers of the answer's dead letter (the consumer's reason)."""

        def found() -> Any:
            for record in self.kafka.records:
                if record.topic == f"{RESPONSES}.dlq" and json.loads(record.value or b"{}").get("id") == event_id:
                    return {key: value.decode() for key, value in record.headers}
            return None

        return dict(await eventually(found, timeout=30))


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


@pytest.fixture
async def automatic(shop: Shop) -> AsyncIterator[None]:
    """The shop in automatic mode (requests are submitted as soon as the stock is reserved);
    the settings are put back afterwards, the stack being shared by the whole session."""
    url = f"{shop.stack.url('fulfillment')}/settings"
    before = (await shop.http.get(url)).json()
    assert (await shop.http.put(url, json={"auto_fulfill": True})).json()["auto_fulfill"] is True
    yield
    assert (await shop.http.put(url, json=before)).status_code == 200


@pytest.fixture
async def kafka(stack: LocalStack) -> AsyncIterator[TopicReader]:
    async with TopicReader(stack.kafka_bootstrap, FULFILLMENT_TOPIC, REQUESTS, f"{RESPONSES}.dlq") as reader:
        yield reader


async def submitted_order(shop: Shop, sku: str, quantity: int, stock: int) -> tuple[str, dict[str, Any]]:
    """A paid order at the fulfillment service's location, its request submitted."""
    location = await shop.location("acme", fulfillment_service=SERVICE)
    await shop.stock(location, sku, stock)
    order = await shop.paid_order(physical(sku, quantity))
    fo = await fo_where(shop, order["id"], request_status="SUBMITTED")
    assert fo["location_id"] == location and fo["status"] == "OPEN"
    return location, fo


async def fo_where(shop: Shop, order_id: str, **wanted: str) -> dict[str, Any]:
    async def matches() -> dict[str, Any] | None:
        for fo in await shop.fulfillment_orders(order_id):
            if all(fo.get(key) == value for key, value in wanted.items()):
                return fo
        return None

    return dict(await eventually(matches, timeout=30))


async def test_accepted_then_shipped_with_tracking_fulfils_the_order(
    shop: Shop, automatic: None, kafka: TopicReader
) -> None:
    acme = ThirdParty(shop, kafka)
    sku = shop.sku("MUG")
    location, fo = await submitted_order(shop, sku, quantity=2, stock=5)
    request = await acme.request(fo["id"])
    assert request["data"]["fulfillment_service"] == SERVICE
    assert [(line["sku"], line["quantity"]) for line in request["data"]["fulfillment_order"]["line_items"]] == [
        (sku, 2)
    ]
    line_id = request["data"]["fulfillment_order"]["line_items"][0]["line_item_id"]

    await acme.answer("fulfillment_service.request_accepted", fo, message="on it")
    await fo_where(shop, fo["order_id"], status="IN_PROGRESS", request_status="ACCEPTED")
    await shop.display_status(fo["order_id"], "IN_PROGRESS")

    tracking = {"numbers": ["ACME-1"], "company": "Acme Freight", "urls": ["https://track.example/ACME-1"]}
    partial: dict[str, Any] = {"line_items": [{"line_item_id": line_id, "quantity": 1}], "tracking": tracking}
    shipped_once = await acme.answer("fulfillment_service.shipped", fo, **partial)
    await acme.answer("fulfillment_service.shipped", fo, event_id=shipped_once, **partial)  # redelivered
    await acme.answer("fulfillment_service.shipped", fo, tracking={"numbers": ["ACME-2"], "company": "Acme Freight"})

    closed = await fo_where(shop, fo["order_id"], status="CLOSED")
    assert closed["request_status"] == "CLOSED"
    assert [f["tracking"]["numbers"] for f in closed["fulfillments"]] == [["ACME-1"], ["ACME-2"]]  # once each
    assert closed["line_items"][0]["fulfilled_quantity"] == 2
    assert all(f["notify_customer"] for f in closed["fulfillments"])
    await shop.display_status(fo["order_id"], "FULFILLED")

    async def committed() -> bool:
        level = (await shop.levels(sku))[location]
        return bool(level["on_hand"] == 3 and level["reserved"] == 0)

    await eventually(committed, timeout=30)

    async def buyer_emailed() -> bool:
        reply = await shop.http.get(
            f"{shop.stack.url('notifications')}/notifications", params={"order_id": fo["order_id"]}
        )
        return any(n["type"] == "shipping_confirmation" for n in reply.json()["items"])

    await eventually(buyer_emailed, timeout=30)
    await eventually(lambda: "fulfillment_order.closed" in kafka.types(fo["order_id"], FULFILLMENT_TOPIC))
    types = kafka.types(fo["order_id"], FULFILLMENT_TOPIC)
    assert types.index("fulfillment_request.submitted") < types.index("fulfillment_request.accepted")
    assert types.count("fulfillment.created") == 2


async def test_rejected_request_shows_request_declined(shop: Shop, automatic: None, kafka: TopicReader) -> None:
    acme = ThirdParty(shop, kafka)
    _, fo = await submitted_order(shop, shop.sku("MUG"), quantity=1, stock=2)
    await acme.request(fo["id"])
    await acme.answer(
        "fulfillment_service.request_rejected", fo, reason="UNDELIVERABLE_DESTINATION", message="no deliveries there"
    )
    rejected = await fo_where(shop, fo["order_id"], request_status="REJECTED")
    assert rejected["status"] == "OPEN"  # back with the merchant
    await shop.display_status(fo["order_id"], "REQUEST_DECLINED")

    def announced() -> Any:
        events = [
            e for e in kafka.events(fo["order_id"], FULFILLMENT_TOPIC) if e["type"] == "fulfillment_request.rejected"
        ]
        return events[0] if events else None

    event = await eventually(announced, timeout=30)
    assert (event["data"]["reason"], event["data"]["message"]) == ("UNDELIVERABLE_DESTINATION", "no deliveries there")


async def test_cancellation_requested_by_the_merchant_and_accepted_gives_the_lines_back_to_the_merchant(
    shop: Shop, automatic: None, kafka: TopicReader
) -> None:
    acme = ThirdParty(shop, kafka)
    sku = shop.sku("MUG")
    location, fo = await submitted_order(shop, sku, quantity=1, stock=4)
    await acme.request(fo["id"])
    await acme.answer("fulfillment_service.request_accepted", fo)
    await fo_where(shop, fo["order_id"], request_status="ACCEPTED")
    assert (await shop.levels(sku))[location]["reserved"] == 1

    reply = await shop.post(f"/fulfillment-orders/{fo['id']}/request-cancellation", {"message": "buyer called"})
    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["request_status"]) == ("IN_PROGRESS", "CANCELLATION_REQUESTED")
    again = await shop.post(f"/fulfillment-orders/{fo['id']}/request-cancellation", {"message": "again"})
    assert again.status_code == 409, again.text
    assert "CANCELLATION_REQUESTED" in again.json()["error"]["message"]

    asked = await acme.request(fo["id"], "fulfillment_service.cancellation_requested")
    assert asked["data"]["message"] == "buyer called"
    await acme.answer("fulfillment_service.cancellation_accepted", fo)

    # Issue 11: the lines are back with the merchant, OPEN, their unit still reserved here (the
    # fulfillment order is no longer CANCELLED, which stranded the order).
    back = await fo_where(shop, fo["order_id"], request_status="CANCELLATION_ACCEPTED")
    assert back["status"] == "OPEN"
    await shop.display_status(fo["order_id"], "UNFULFILLED")
    assert (await shop.levels(sku))[location]["reserved"] == 1
    await eventually(lambda: "cancellation_request.accepted" in kafka.types(fo["order_id"], FULFILLMENT_TOPIC))


async def test_an_answer_from_another_fulfillment_service_is_dead_lettered_not_applied(
    shop: Shop, automatic: None, kafka: TopicReader
) -> None:
    _, fo = await submitted_order(shop, shop.sku("MUG"), quantity=1, stock=2)
    impostor = ThirdParty(shop, kafka, service_id="other-3pl")
    event_id = await impostor.answer("fulfillment_service.request_accepted", fo)

    headers = await impostor.dead_letter(event_id)
    assert headers["x-dlq-reason"] == "rule_violation"  # refused at once, not retried
    assert headers["x-dlq-consumer-group"] == "fulfillment"
    assert "'other-3pl' cannot answer" in headers["x-dlq-error"] and SERVICE in headers["x-dlq-error"]
    assert (await fo_where(shop, fo["order_id"], id=fo["id"]))["request_status"] == "SUBMITTED"  # not applied

    await ThirdParty(shop, kafka).answer("fulfillment_service.request_accepted", fo)  # the consumer carries on
    await fo_where(shop, fo["order_id"], request_status="ACCEPTED")


async def test_a_forged_answer_for_another_service_s_location_is_dead_lettered_and_changes_nothing(
    shop: Shop, automatic: None, kafka: TopicReader
) -> None:
    """Issue 6: a forged `fulfillment_service.shipped` naming the location's own service id once
    fulfilled a real order and emailed the buyer a fake tracking number. Now only an answer that
    proves it is that service's goes through: the forgeries go to the DLQ with the reason, the
    fulfillment order stays as it was, and the consumer carries on with the genuine answers."""
    acme = ThirdParty(shop, kafka)
    _, fo = await submitted_order(shop, shop.sku("MUG"), quantity=1, stock=2)
    await acme.request(fo["id"])
    await acme.answer("fulfillment_service.request_accepted", fo)
    accepted = await fo_where(shop, fo["order_id"], request_status="ACCEPTED")
    fake: dict[str, Any] = {"tracking": {"numbers": ["FAKE-1"], "company": "Fake Freight"}}
    assert shop.stack.auth is not None
    forgeries = {
        # what anyone who can write the topic could send: the owner's id, no proof
        await acme.answer("fulfillment_service.shipped", fo, signed=False, **fake): "carries no authtoken",
        # another fulfillment service's genuine signature, answering in acme's name
        await acme.answer(
            "fulfillment_service.shipped", fo, proof=_proof_of(shop, "other-3pl", fo, fake), **fake
        ): f"does not speak for fulfillment service '{SERVICE}'",
        # the merchant's own token, with every merchant scope: an access token is no answer's proof
        await acme.answer(
            "fulfillment_service.shipped", fo, proof=shop.stack.auth.admin_token(60), **fake
        ): "the token is not an answer's proof",
    }
    for event_id, reason in forgeries.items():
        headers = await acme.dead_letter(event_id)
        assert headers["x-dlq-reason"] == "rule_violation", headers
        assert "UnprovenAnswer" in headers["x-dlq-error"] and reason in headers["x-dlq-error"], headers

    await acme.answer("fulfillment_service.shipped", fo, tracking={"numbers": ["ACME-9"], "company": "Acme"})
    closed = await fo_where(shop, fo["order_id"], status="CLOSED")
    assert [f["tracking"]["numbers"] for f in closed["fulfillments"]] == [["ACME-9"]]  # no fake shipment, ever
    assert accepted["fulfillments"] == []

    def shipped_by() -> Any:
        created = [e for e in kafka.events(fo["order_id"], FULFILLMENT_TOPIC) if e["type"] == "fulfillment.created"]
        return created[0] if created else None

    assert (await eventually(shipped_by, timeout=30)).get("actor") == SERVICE  # the answer's signer did it


def _proof_of(shop: Shop, service: str, fo: dict[str, Any], data: dict[str, Any]) -> str:
    """A valid proof of `service` for some answer of its own (not the one it is attached to)."""
    assert shop.stack.auth is not None
    own = CloudEvent(
        source=service, type="fulfillment_service.shipped", subject=fo["order_id"],
        data={"fulfillment_order_id": fo["id"], "fulfillment_service": service, **data},
    )  # fmt: skip
    return str((shop.stack.auth.sign_answer(own, service).model_extra or {})[ANSWER_PROOF])
