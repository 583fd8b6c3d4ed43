"""What a redriven dead letter carries (issue 13: "Dead-letter copies have an empty content-type
(and redrive keeps it)"): the original's content type, no dead-letter headers, no `ce_*` header."""

from __future__ import annotations

import json

from aiokafka import ConsumerRecord

from deploy.dlq import DeadLetter, redriven_headers
from shared.messaging import CLOUDEVENTS_CONTENT_TYPE

EVENT = json.dumps({"specversion": "1.0", "id": "e-1", "source": "urn:fulfillment-platform:orders",
                    "type": "order.paid", "subject": "o-1", "data": {}}).encode()  # fmt: skip


def letter(value: bytes, *headers: tuple[str, bytes]) -> DeadLetter:
    record = ConsumerRecord("orders.events.v1.dlq", 0, 7, 0, 0, b"o-1", value, None, 0, 0, list(headers))
    return DeadLetter(record)


def test_redrive_keeps_the_content_type_and_drops_the_dead_letter_headers() -> None:
    dead = letter(EVENT, ("content-type", CLOUDEVENTS_CONTENT_TYPE.encode()), ("correlation_id", b"c-1"),
                  ("x-dlq-reason", b"handler_failed"), ("x-dlq-event-type", b"order.paid"))  # fmt: skip
    assert redriven_headers(dead) == [("content-type", CLOUDEVENTS_CONTENT_TYPE.encode()), ("correlation_id", b"c-1")]
    assert dead.event_type == "order.paid"


def test_an_older_dead_letter_with_an_empty_content_type_and_a_ce_type_goes_back_in_structured_mode() -> None:
    dead = letter(EVENT, ("content-type", b""), ("ce_type", b"order.paid"), ("x-dlq-reason", b"handler_failed"))
    assert redriven_headers(dead) == [("content-type", CLOUDEVENTS_CONTENT_TYPE.encode())]
    assert dead.event_type == "order.paid"


def test_a_value_that_is_no_cloudevent_is_not_labelled_one() -> None:
    assert redriven_headers(letter(b"{half a message", ("content-type", b""))) == [("content-type", b"")]
