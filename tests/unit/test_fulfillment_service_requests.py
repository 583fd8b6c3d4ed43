"""The fulfillment-service workflow after submission: the service's answers and the merchant's
cancellation request, allowed and refused (pure rules, no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.fulfillment.domain.fulfillment_orders import service_requests
from services.fulfillment.domain.fulfillment_orders.model import (
    LineQuantity,
    NotTheFulfillmentService,
    TransitionRefused,
)
from services.fulfillment.store import FULFILLMENT_ORDERS as mapping
from shared.catalog import (
    FulfillmentRequestRejection,
    FulfillmentServiceResponse,
    FulfillmentServiceShipment,
    HoldReason,
    RejectionReason,
    ShippedLine,
    Tracking,
)
from shared.events import spec_for
from shared.store import Change, Document
from tests import fulfillment_documents as fo_rules
from tests.event_data import data_of
from tests.unit.test_fulfillment_order import STORE, T1, THIRD_PARTY, apply, open_fo, ship, types

SERVICE = "shipco"  # THIRD_PARTY's fulfillment service


def answer(service: str = SERVICE, message: str = "") -> FulfillmentServiceResponse:
    return FulfillmentServiceResponse(fulfillment_order_id="fo", fulfillment_service=service, message=message)


def rejection(
    reason: RejectionReason = RejectionReason.INCORRECT_ADDRESS, service: str = SERVICE
) -> FulfillmentRequestRejection:
    return FulfillmentRequestRejection(
        fulfillment_order_id="fo", fulfillment_service=service, reason=reason, message="no such street"
    )


def shipment(lines: list[tuple[str, int]] | None = None, service: str = SERVICE) -> FulfillmentServiceShipment:
    return FulfillmentServiceShipment(
        fulfillment_order_id="fo",
        fulfillment_service=service,
        line_items=None if lines is None else [ShippedLine(line_item_id=i, quantity=q) for i, q in lines],
        tracking=Tracking(numbers=["ACME1"], company="Acme Freight", urls=["https://track.example/ACME1"]),
    )


def submitted() -> Document:
    return fo_rules.submit_request(open_fo(location=THIRD_PARTY), T1).document


def accepted() -> Document:
    return apply(fo_rules.accept_request(submitted(), answer(), T1))


def cancellation_requested(fo: Document | None = None) -> Document:
    return fo_rules.request_cancellation(fo or accepted(), "buyer changed their mind", T1).document


# --- accept and reject ---------------------------------------------------------------------


def test_accepted_request_puts_the_fulfillment_order_in_progress_at_the_service() -> None:
    change = fo_rules.accept_request(submitted(), answer(message="on it"), T1)
    fo = apply(change)
    assert (fo["status"], fo["request_status"]) == ("IN_PROGRESS", "ACCEPTED")
    assert types(change) == ["fulfillment_request.accepted"]
    assert change is not None
    data = data_of(change.events[0])
    assert data["fulfillment_service"] == SERVICE and data["message"] == "on it"
    assert data["fulfillment_order"]["request_status"] == "ACCEPTED"
    assert change.events[0].subject == "order-1"
    assert fo_rules.accept_request(fo, answer(), T1) is None  # the same answer again
    with pytest.raises(TransitionRefused, match="request is ACCEPTED at fulfillment service shipco: it ships this"):
        ship(fo)  # the merchant does not ship what the service has
    with pytest.raises(TransitionRefused, match="cannot be put on hold here"):
        fo_rules.place_hold(fo, HoldReason.OTHER, "", T1)


def test_rejected_request_goes_back_to_the_merchant() -> None:
    change = fo_rules.reject_request(submitted(), rejection(), T1)
    fo = apply(change)
    assert (fo["status"], fo["request_status"]) == ("OPEN", "REJECTED")
    assert types(change) == ["fulfillment_request.rejected"]
    assert change is not None
    assert change.events[0].data["reason"] == "INCORRECT_ADDRESS"
    assert change.events[0].data["message"] == "no such street"
    assert fo_rules.reject_request(fo, rejection(), T1) is None  # the same answer again
    # the merchant acts: ships it, moves it, or submits it again
    assert ship(fo).document["status"] == "CLOSED"
    assert fo_rules.move(fo, STORE, {"MUG": 9}, T1).document["location_id"] == "store-2"
    assert fo_rules.submit_request(fo, T1).document["request_status"] == "SUBMITTED"


def test_accept_or_reject_only_a_submitted_request() -> None:
    unsubmitted = open_fo(location=THIRD_PARTY)
    with pytest.raises(TransitionRefused, match="is UNSUBMITTED, not SUBMITTED: it cannot be accepted"):
        fo_rules.accept_request(unsubmitted, answer(), T1)
    with pytest.raises(TransitionRefused, match="is ACCEPTED, not SUBMITTED: it cannot be rejected"):
        fo_rules.reject_request(accepted(), rejection(), T1)
    cancelled = apply(fo_rules.cancel(submitted(), "order cancelled", T1))
    with pytest.raises(TransitionRefused, match="fulfillment order is CANCELLED"):
        fo_rules.accept_request(cancelled, answer(), T1)


def test_only_the_locations_fulfillment_service_may_answer() -> None:
    fo = submitted()
    answers: list[Callable[[Document], Any]] = [
        lambda f: fo_rules.accept_request(f, answer("other-3pl"), T1),
        lambda f: fo_rules.reject_request(f, rejection(service="other-3pl"), T1),
        lambda f: fo_rules.accept_cancellation(f, answer("other-3pl"), T1),
        lambda f: fo_rules.reject_cancellation(f, answer("other-3pl"), T1),
        lambda f: fo_rules.shipped_by_service(f, shipment(service="other-3pl"), T1),
        lambda f: fo_rules.cannot_complete(f, answer("other-3pl"), T1),
    ]
    for respond in answers:
        with pytest.raises(NotTheFulfillmentService, match="'other-3pl' cannot answer .* run by 'shipco'"):
            respond(fo)
    with pytest.raises(NotTheFulfillmentService, match="not run by a fulfillment service"):
        fo_rules.accept_request(open_fo(), answer(), T1)


# --- the merchant's cancellation request ------------------------------------------------------


def test_merchant_requests_cancellation_of_an_accepted_request() -> None:
    change = fo_rules.request_cancellation(accepted(), "buyer changed their mind", T1)
    fo = change.document
    assert (fo["status"], fo["request_status"]) == ("IN_PROGRESS", "CANCELLATION_REQUESTED")
    assert types(change) == ["cancellation_request.submitted", "fulfillment_service.cancellation_requested"]
    to_service = change.events[1]
    assert to_service.subject == SERVICE  # keyed by the fulfillment service on fulfillment.requests.v1
    assert to_service.spec.topic.name == "fulfillment.requests.v1"
    assert to_service.data["message"] == "buyer changed their mind"
    assert data_of(to_service)["fulfillment_order"]["request_status"] == "CANCELLATION_REQUESTED"
    with pytest.raises(TransitionRefused, match="is CANCELLATION_REQUESTED, not SUBMITTED or ACCEPTED"):
        fo_rules.request_cancellation(fo, "again", T1)


def test_cancellation_of_a_request_not_yet_accepted_may_be_requested() -> None:
    fo = fo_rules.request_cancellation(submitted(), "", T1).document
    assert (fo["status"], fo["request_status"]) == ("OPEN", "CANCELLATION_REQUESTED")


def test_cancellation_request_refusals() -> None:
    with pytest.raises(TransitionRefused, match="not run by a fulfillment service"):
        fo_rules.request_cancellation(open_fo(), "", T1)
    with pytest.raises(TransitionRefused, match="is UNSUBMITTED"):
        fo_rules.request_cancellation(open_fo(location=THIRD_PARTY), "", T1)
    rejected = apply(fo_rules.reject_request(submitted(), rejection(), T1))
    with pytest.raises(TransitionRefused, match="is REJECTED"):
        fo_rules.request_cancellation(rejected, "", T1)
    closed = fo_rules.shipped_by_service(accepted(), shipment(), T1).document
    with pytest.raises(TransitionRefused, match="fulfillment order is CLOSED"):
        fo_rules.request_cancellation(closed, "", T1)


def test_cancellation_accepted_strands_the_order_no_more_its_lines_are_open_with_the_merchant() -> None:
    """Issue 11, "Cancellation accepted strands the order": the fulfillment order was CANCELLED and
    submit, fulfil and move all answered 409. Now the lines are back in an OPEN fulfillment order
    (its stock still reserved there) the merchant can fulfil, move, or request again."""
    change = fo_rules.accept_cancellation(cancellation_requested(), answer(message="stopped"), T1)
    fo = apply(change)
    assert (fo["status"], fo["request_status"]) == ("OPEN", "CANCELLATION_ACCEPTED")
    assert types(change) == ["cancellation_request.accepted"]  # no fulfillment_order.cancelled: stock stays
    assert fo_rules.accept_cancellation(fo, answer(), T1) is None  # the same answer again
    assert apply(ship(fo))["status"] == "CLOSED"
    assert fo_rules.move(fo, STORE, {"MUG": 9}, T1).document["status"] == "OPEN"
    assert fo_rules.submit_request(fo, T1).document["request_status"] == "SUBMITTED"


def test_cancellation_rejected_keeps_it_in_progress_at_the_service() -> None:
    change = fo_rules.reject_cancellation(cancellation_requested(), answer(message="already packed"), T1)
    fo = apply(change)
    assert (fo["status"], fo["request_status"]) == ("IN_PROGRESS", "CANCELLATION_REJECTED")
    assert types(change) == ["cancellation_request.rejected"]
    assert change is not None and change.events[0].data["message"] == "already packed"
    assert fo_rules.reject_cancellation(fo, answer(), T1) is None  # the same answer again
    with pytest.raises(TransitionRefused, match="it ships this"):
        ship(fo)
    # the merchant may ask again
    assert cancellation_requested(fo)["request_status"] == "CANCELLATION_REQUESTED"


def test_cancellation_answers_need_a_cancellation_request() -> None:
    with pytest.raises(TransitionRefused, match="is ACCEPTED, not CANCELLATION_REQUESTED: it cannot be cancelled"):
        fo_rules.accept_cancellation(accepted(), answer(), T1)
    with pytest.raises(TransitionRefused, match="is ACCEPTED, not CANCELLATION_REQUESTED"):
        fo_rules.reject_cancellation(accepted(), answer(), T1)


# --- shipped and cannot complete --------------------------------------------------------------


def test_shipped_everything_creates_a_fulfillment_and_closes_fulfillment_order_and_request() -> None:
    change = fo_rules.shipped_by_service(accepted(), shipment(), T1)
    fo = change.document
    assert (fo["status"], fo["request_status"]) == ("CLOSED", "CLOSED")
    assert types(change) == ["fulfillment.created", "fulfillment_order.closed"]
    fulfillment = data_of(change.events[0])["fulfillment"]
    assert fulfillment["notify_customer"] is True  # the buyer is emailed
    assert fulfillment["tracking"] == {
        "numbers": ["ACME1"], "company": "Acme Freight", "urls": ["https://track.example/ACME1"],
    }  # fmt: skip
    assert [(line["sku"], line["quantity"]) for line in fulfillment["line_items"]] == [("MUG", 3)]


def test_shipped_some_lines_leaves_the_rest_in_progress_with_the_service() -> None:
    fo = fo_rules.shipped_by_service(accepted(), shipment([("li-MUG", 1)]), T1).document
    assert (fo["status"], fo["request_status"]) == ("IN_PROGRESS", "ACCEPTED")
    assert fo["line_items"][0]["fulfilled_quantity"] == 1
    rest = fo_rules.shipped_by_service(fo, shipment(), T1).document
    assert (rest["status"], rest["request_status"]) == ("CLOSED", "CLOSED")
    assert rest["line_items"][0]["fulfilled_quantity"] == 3


def test_shipped_lines_are_checked_like_the_merchants() -> None:
    with pytest.raises(fo_rules.InvalidRequest, match="line_items.0.quantity"):
        fo_rules.shipped_by_service(accepted(), shipment([("li-MUG", 4)]), T1)
    with pytest.raises(fo_rules.InvalidRequest, match="line_items.0.line_item_id"):
        fo_rules.shipped_by_service(accepted(), shipment([("nope", 1)]), T1)


def test_shipped_while_a_cancellation_is_requested_closes_it() -> None:
    fo = fo_rules.shipped_by_service(cancellation_requested(), shipment(), T1).document
    assert (fo["status"], fo["request_status"]) == ("CLOSED", "CLOSED")


def test_shipped_needs_an_accepted_request() -> None:
    with pytest.raises(TransitionRefused, match="is SUBMITTED, not ACCEPTED"):
        fo_rules.shipped_by_service(submitted(), shipment(), T1)
    closed = fo_rules.shipped_by_service(accepted(), shipment(), T1).document
    with pytest.raises(TransitionRefused, match="fulfillment order is CLOSED"):
        fo_rules.shipped_by_service(closed, shipment(), T1)


def test_cannot_complete_makes_it_incomplete_and_closes_the_request() -> None:
    partly = fo_rules.shipped_by_service(accepted(), shipment([("li-MUG", 1)]), T1).document
    change = fo_rules.cannot_complete(partly, answer(message="warehouse flooded"), T1)
    fo = apply(change)
    assert (fo["status"], fo["request_status"]) == ("INCOMPLETE", "CLOSED")
    assert types(change) == ["fulfillment_order.incomplete"]
    assert change is not None and change.events[0].data["reason"] == "shipco cannot complete it: warehouse flooded"
    assert fo_rules.cannot_complete(fo, answer(), T1) is None  # the same answer again
    assert apply(fo_rules.cancel(fo, "order cancelled", T1))["status"] == "CANCELLED"  # releases its stock


def test_incomplete_is_a_dead_end_no_more() -> None:
    """Issue 11, "INCOMPLETE is a dead end that keeps stock reserved": fulfil, move, submit and
    hold all answered 409. Now the merchant moves it (inventory releases here and reserves there),
    requests it again, or fulfils it; asking the service to cancel still says what to do instead."""
    partly = fo_rules.shipped_by_service(accepted(), shipment([("li-MUG", 1)]), T1).document
    fo = apply(fo_rules.cannot_complete(partly, answer(), T1))
    moved = fo_rules.move(fo, STORE, {"MUG": 9}, T1)
    assert types(moved) == ["fulfillment_order.moved"]
    assert (moved.document["status"], moved.document["request_status"]) == ("IN_PROGRESS", "UNSUBMITTED")
    again = fo_rules.submit_request(fo, T1).document
    assert (again["status"], again["request_status"]) == ("IN_PROGRESS", "SUBMITTED")
    assert apply(ship(fo))["status"] == "CLOSED"
    assert apply(fo_rules.place_hold(fo, HoldReason.OTHER, "check stock", T1))["status"] == "ON_HOLD"
    with pytest.raises(TransitionRefused, match="move it, request it again or fulfil it"):
        fo_rules.request_cancellation(fo, "", T1)


def test_cannot_complete_needs_an_accepted_request() -> None:
    with pytest.raises(TransitionRefused, match="is SUBMITTED, not ACCEPTED"):
        fo_rules.cannot_complete(submitted(), answer(), T1)


# --- the order cancelled under the service's feet --------------------------------------------


def test_cancelled_order_tells_the_service_that_has_the_request_to_stop() -> None:
    change = fo_rules.cancel(accepted(), "the order was cancelled (customer)", T1)
    assert types(change) == ["fulfillment_order.cancelled", "fulfillment_service.fulfillment_order_cancelled"]
    assert change is not None
    notice = change.events[1]
    assert notice.subject == SERVICE and notice.spec.topic.name == "fulfillment.requests.v1"
    assert notice.data["message"] == "the order was cancelled (customer)"
    with pytest.raises(TransitionRefused, match="fulfillment order is CANCELLED"):
        fo_rules.shipped_by_service(change.document, shipment(), T1)  # a late shipment is refused


def test_cancelled_order_whose_request_was_rejected_or_never_sent_tells_nobody() -> None:
    rejected = apply(fo_rules.reject_request(submitted(), rejection(), T1))
    assert types(fo_rules.cancel(rejected, "order cancelled", T1)) == ["fulfillment_order.cancelled"]
    unsubmitted = open_fo(location=THIRD_PARTY)
    assert types(fo_rules.cancel(unsubmitted, "order cancelled", T1)) == ["fulfillment_order.cancelled"]


# --- the whole table: every answer in every request status ------------------------------------


def in_request_status(status: str) -> Document:
    if status == "UNSUBMITTED":
        return open_fo(location=THIRD_PARTY)
    if status == "SUBMITTED":
        return submitted()
    if status == "ACCEPTED":
        return accepted()
    if status == "REJECTED":
        return apply(fo_rules.reject_request(submitted(), rejection(), T1))
    if status == "CANCELLATION_REQUESTED":
        return cancellation_requested()
    if status == "CANCELLATION_ACCEPTED":
        return apply(fo_rules.accept_cancellation(cancellation_requested(), answer(), T1))
    if status == "CANCELLATION_REJECTED":
        return apply(fo_rules.reject_cancellation(cancellation_requested(), answer(), T1))
    assert status == "CLOSED"
    return fo_rules.shipped_by_service(accepted(), shipment(), T1).document


REQUEST_ACTIONS: dict[str, Callable[[Document], Change[Document] | None]] = {
    "accept": lambda fo: fo_rules.accept_request(fo, answer(), T1),
    "reject": lambda fo: fo_rules.reject_request(fo, rejection(), T1),
    "request_cancellation": lambda fo: fo_rules.request_cancellation(fo, "", T1),
    "accept_cancellation": lambda fo: fo_rules.accept_cancellation(fo, answer(), T1),
    "reject_cancellation": lambda fo: fo_rules.reject_cancellation(fo, answer(), T1),
    "shipped": lambda fo: fo_rules.shipped_by_service(fo, shipment([("li-MUG", 1)]), T1),
    "cannot_complete": lambda fo: fo_rules.cannot_complete(fo, answer(), T1),
    "merchant_fulfils": lambda fo: ship(fo, [LineQuantity("li-MUG", 1)]),
}
REQUEST_STATUSES = [
    "UNSUBMITTED", "SUBMITTED", "ACCEPTED", "REJECTED",
    "CANCELLATION_REQUESTED", "CANCELLATION_ACCEPTED", "CANCELLATION_REJECTED", "CLOSED",
]  # fmt: skip
# ok: allowed and announced; 409: refused with the reason; -: the same answer again, nothing to do
REQUEST_TABLE = {
    #                        UNSUB  SUBM   ACC    REJ    C_REQ  C_ACC  C_REJ  CLOSED
    "accept":               ["409", "ok",  "-",   "409", "409", "409", "409", "409"],
    "reject":               ["409", "ok",  "409", "-",   "409", "409", "409", "409"],
    "request_cancellation": ["409", "ok",  "ok",  "409", "409", "409", "ok",  "409"],
    "accept_cancellation":  ["409", "409", "409", "409", "ok",  "-",   "409", "409"],
    "reject_cancellation":  ["409", "409", "409", "409", "ok",  "409", "-",   "409"],
    "shipped":              ["409", "409", "ok",  "409", "ok",  "409", "ok",  "409"],
    "cannot_complete":      ["409", "409", "ok",  "409", "ok",  "409", "ok",  "409"],
    "merchant_fulfils":     ["ok",  "409", "409", "ok",  "409", "ok",  "409", "409"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [(a, s, REQUEST_TABLE[a][i]) for a in REQUEST_ACTIONS for i, s in enumerate(REQUEST_STATUSES)],
)
def test_every_answer_in_every_request_status(action: str, status: str, expected: str) -> None:
    fo = in_request_status(status)
    assert fo["request_status"] == status
    if expected == "409":
        with pytest.raises(TransitionRefused) as refused:
            REQUEST_ACTIONS[action](fo)
        assert str(refused.value)  # always says why
    elif expected == "-":
        assert REQUEST_ACTIONS[action](fo) is None
    else:
        change = REQUEST_ACTIONS[action](fo)
        assert change is not None and change.events, "an allowed transition is announced"


def test_the_answers_table_names_every_answer_a_service_publishes_and_each_retry_changes_nothing() -> None:
    """The five answers that only move the request on are one table; each is an event type of
    fulfillment.responses.v1, and the same answer again is a retry (nothing to do)."""
    for kind in service_requests.ANSWERS:
        assert spec_for(f"fulfillment_service.{kind}").model is not None
    fo = mapping.load(submitted())
    accepted = service_requests.answered("request_accepted", fo, answer(), T1)
    assert accepted is not None and accepted.fo.request_status == "ACCEPTED"
    assert service_requests.answered("request_accepted", accepted.fo, answer(), T1) is None
    gave_up = service_requests.answered("cannot_complete", accepted.fo, answer(), T1)
    assert gave_up is not None and (gave_up.fo.status, gave_up.fo.request_status) == ("INCOMPLETE", "CLOSED")
    assert service_requests.answered("cannot_complete", gave_up.fo, answer(), T1) is None
