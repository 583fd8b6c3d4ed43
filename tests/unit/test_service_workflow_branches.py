"""Issue 11: every branch of the fulfillment-service workflows, new and legacy, on the typed
fulfillment order (pure rules, no I/O): withdraw, reset to unfulfilled, a move after a declined
request, the legacy workflow's progress and refusals, and the messages kept with the request."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.fulfillment.domain.fulfillment_orders import lifecycle, service_requests, shipping
from services.fulfillment.domain.fulfillment_orders.model import (
    FulfillmentOrder,
    FulfillmentRequest,
    Reservation,
    Transition,
    TransitionRefused,
)
from services.fulfillment.domain.routing import RoutingLocation
from services.fulfillment.store import FULFILLMENT_ORDERS as mapping
from shared.catalog import FulfillmentRequestRejection, FulfillmentServiceResponse, ServiceWorkflow
from tests.event_data import data_of
from tests.unit.test_fulfillment_order import STORE, T1, THIRD_PARTY, open_fo

SERVICE = "shipco"
LEGACY = replace(THIRD_PARTY, workflow=ServiceWorkflow.LEGACY)


def at_service(location: RoutingLocation = THIRD_PARTY) -> FulfillmentOrder:
    return mapping.load(open_fo(location=location))


def answer(message: str = "") -> FulfillmentServiceResponse:
    return FulfillmentServiceResponse(fulfillment_order_id="fo", fulfillment_service=SERVICE, message=message)


def done(transition: Transition | None) -> FulfillmentOrder:
    assert transition is not None
    return transition.fo


def types(transition: Transition | None) -> list[str]:
    assert transition is not None
    return [event.type for event in transition.events]


def submitted(fo: FulfillmentOrder | None = None, message: str = "") -> FulfillmentOrder:
    return done(service_requests.submit_request(fo or at_service(), T1, message))


def accepted() -> FulfillmentOrder:
    return done(service_requests.answered("request_accepted", submitted(), answer(), T1))


def cancellation_requested() -> FulfillmentOrder:
    return done(service_requests.request_cancellation(accepted(), "buyer called", T1))


# --- the defects ---------------------------------------------------------------------------


def test_request_declined_sticks_no_more_after_a_move_to_the_merchants_own_location() -> None:
    """Issue 11, "REQUEST_DECLINED sticks": after a rejection and a move the fulfillment order was
    OPEN but still REJECTED, so the order showed REQUEST_DECLINED. The request stays behind."""
    rejection = FulfillmentRequestRejection(fulfillment_order_id="fo", fulfillment_service=SERVICE)
    rejected = done(service_requests.answered("request_rejected", submitted(), rejection, T1))
    moved = lifecycle.move(rejected, STORE, {"MUG": 9}, T1)
    assert (moved.fo.status, moved.fo.request_status, moved.fo.fulfillment_service) == ("OPEN", "UNSUBMITTED", None)
    assert data_of(moved.events[0])["fulfillment_order"]["request_status"] == "UNSUBMITTED"
    assert done(shipping.fulfil(replace(moved.fo, reservation_status=Reservation.RESERVED), FulfillmentRequest(), T1))


def test_a_wrong_reason_no_more_moving_an_accepted_fulfillment_order() -> None:
    """Issue 11, "A wrong reason": moving an accepted fulfillment order said "part of it has
    already shipped" when nothing had. It says the service has it, and what to do."""
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.move(accepted(), STORE, {"MUG": 9}, T1)
    assert "already shipped" not in str(refused.value)
    assert "ACCEPTED" in str(refused.value) and "request a cancellation first" in str(refused.value)
    with pytest.raises(TransitionRefused, match="withdraw the request first"):
        lifecycle.move(submitted(), STORE, {"MUG": 9}, T1)


# --- new workflow --------------------------------------------------------------------------


def test_withdraw_a_request_not_yet_accepted_back_to_open_and_the_service_is_told() -> None:
    withdrawn = service_requests.withdraw_request(submitted(), "wrong warehouse", T1)
    assert (withdrawn.fo.status, withdrawn.fo.request_status) == ("OPEN", "UNSUBMITTED")
    assert types(withdrawn) == ["fulfillment_request.withdrawn", "fulfillment_service.request_withdrawn"]
    told = withdrawn.events[1]
    assert told.subject == SERVICE and told.data["message"] == "wrong warehouse"
    assert done(service_requests.submit_request(withdrawn.fo, T1)).request_status == "SUBMITTED"  # again


def test_an_accepted_request_is_not_withdrawn_but_needs_a_cancellation_request() -> None:
    with pytest.raises(TransitionRefused, match="request a cancellation"):
        service_requests.withdraw_request(accepted(), "", T1)
    with pytest.raises(TransitionRefused, match="UNSUBMITTED"):
        service_requests.withdraw_request(at_service(), "", T1)


def test_reset_to_unfulfilled_once_a_cancellation_was_requested_warns_the_service_may_still_ship() -> None:
    with pytest.raises(TransitionRefused, match="not CANCELLATION_REQUESTED"):
        service_requests.reset_to_unfulfilled(accepted(), "", T1)
    reset = service_requests.reset_to_unfulfilled(cancellation_requested(), "they closed down", T1)
    assert (reset.fo.status, reset.fo.request_status) == ("OPEN", "UNSUBMITTED")
    assert types(reset) == ["fulfillment_order.reset_to_unfulfilled"]
    data = data_of(reset.events[0])
    assert "may still ship" in data["warning"] and "they closed down" in data["reason"]
    assert done(lifecycle.move(reset.fo, STORE, {"MUG": 9}, T1)).location_id == STORE.id


def test_mark_as_fulfilled_at_a_service_location_sends_nothing_to_the_service() -> None:
    shipped = shipping.fulfil(at_service(), FulfillmentRequest(), T1)
    assert shipped.fo.status == "CLOSED" and shipped.fo.request_status == "UNSUBMITTED"
    assert not [event for event in shipped.events if event.type.startswith("fulfillment_service.")]


# --- legacy workflow -------------------------------------------------------------------------


def test_legacy_request_goes_straight_to_in_progress_and_reports_progress() -> None:
    requested = service_requests.submit_request(at_service(LEGACY), T1, "gift wrap")
    assert (requested.fo.status, requested.fo.request_status) == ("IN_PROGRESS", "ACCEPTED")
    assert "fulfillment_service.fulfillment_requested" in types(requested)
    first = service_requests.answered("progress_reported", requested.fo, answer("picked"), T1)
    second = service_requests.answered("progress_reported", done(first), answer("packed"), T1)
    assert types(second) == ["fulfillment_request.progress_reported"]
    assert [m.message for m in done(second).messages] == ["gift wrap", "picked", "packed"]
    with pytest.raises(TransitionRefused, match="new workflow"):
        service_requests.answered("progress_reported", accepted(), answer("picked"), T1)


def test_legacy_request_cannot_be_cancelled_from_here_contact_the_service() -> None:
    requested = submitted(at_service(LEGACY))
    with pytest.raises(TransitionRefused, match="contact the fulfillment service"):
        service_requests.request_cancellation(requested, "", T1)
    with pytest.raises(TransitionRefused, match="contact the fulfillment service"):
        service_requests.withdraw_request(requested, "", T1)
    with pytest.raises(TransitionRefused, match="contact the fulfillment service"):
        lifecycle.move(requested, STORE, {"MUG": 9}, T1)
    assert lifecycle.cancel(at_service(LEGACY), "the order was cancelled", T1) is not None  # nothing requested


# --- messages ------------------------------------------------------------------------------


def test_messages_travel_with_the_request_and_are_kept_on_the_fulfillment_order() -> None:
    fo = done(service_requests.answered("request_accepted", submitted(message="fragile"), answer("on it"), T1))
    fo = done(service_requests.request_cancellation(fo, "buyer called", T1))
    fo = done(service_requests.answered("cancellation_rejected", fo, answer("already packed"), T1))
    assert [(m.by, m.event, m.message) for m in fo.messages] == [
        ("merchant", "fulfillment_request.submitted", "fragile"),
        ("fulfillment_service", "fulfillment_service.request_accepted", "on it"),
        ("merchant", "cancellation_request.submitted", "buyer called"),
        ("fulfillment_service", "fulfillment_service.cancellation_rejected", "already packed"),
    ]
    stored = mapping.stored(fo)["messages"]
    assert stored[0] == {"by": "merchant", "event": "fulfillment_request.submitted", "message": "fragile", "at": T1}
    assert mapping.load(mapping.dump(fo)) == fo
