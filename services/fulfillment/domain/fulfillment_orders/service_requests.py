"""Fulfillment services: the requests a location's fulfillment service gets, and its answers
(Shopify's "Fulfillment requests" and "Cancellation requests").

The request follows Shopify's request statuses: UNSUBMITTED -> SUBMITTED -> ACCEPTED (or
REJECTED: back to the merchant) -> CLOSED when it shipped everything. Before the service accepts,
the merchant may withdraw the request (back to UNSUBMITTED); after, they ask to cancel
(CANCELLATION_REQUESTED), which the service accepts (CANCELLATION_ACCEPTED: the lines are back
with the merchant, OPEN, to fulfil, move or request again) or rejects (CANCELLATION_REJECTED: it
keeps shipping); a service that never answers can be reset to unfulfilled. A service that cannot
ship the rest gives up (the fulfillment order is INCOMPLETE, the request CLOSED: the merchant moves
it, requests it again or fulfils it).

A service on the legacy workflow has no accept step (a request is ACCEPTED, the fulfillment order
IN_PROGRESS, at once), reports progress, and cannot be asked to cancel from here. Messages travel
with each step and are kept on the fulfillment order (`messages`).

Only the service that runs the fulfillment order's location answers for it, and the same answer
again (a retry under a new event id) changes nothing. The answers that only move the request on
are one table, `ANSWERS`: which request statuses each answers, and what it leaves behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from shared.catalog import (
    WITH_SERVICE,
    FulfillmentRequestRejection,
    FulfillmentServiceResponse,
    FulfillmentServiceShipment,
    RequestStatus,
    ServiceWorkflow,
)
from shared.events import CloudEvent

from .announcements import fo_event, request_event, to_service
from .model import (
    LEGACY_NO_CANCEL,
    NO_SERVICE,
    TERMINAL,
    FulfillmentOrder,
    FulfillmentRequest,
    LineQuantity,
    NotTheFulfillmentService,
    Status,
    Transition,
    TransitionRefused,
)
from .shipping import refuse_unless_fulfillable, ship

SHIPPING = (RequestStatus.ACCEPTED, RequestStatus.CANCELLATION_REQUESTED, RequestStatus.CANCELLATION_REJECTED)
"""Request statuses in which the service ships (or gives up)."""


# --- the merchant's requests ------------------------------------------------------------

REQUESTABLE = (
    RequestStatus.UNSUBMITTED, RequestStatus.REJECTED, RequestStatus.CANCELLATION_ACCEPTED, RequestStatus.CLOSED
)  # fmt: skip
"""Request statuses from which the merchant may (again) ask the service to ship."""


def submit_request(fo: FulfillmentOrder, now: str, message: str = "") -> Transition:
    """Ask the location's fulfillment service to ship it (it answers on fulfillment.responses.v1
    or over HTTP): the first time, or again after it declined, cancelled or gave up."""
    if not fo.fulfillment_service:
        raise TransitionRefused(NO_SERVICE)
    if fo.request_status not in REQUESTABLE:
        raise TransitionRefused(f"the fulfillment request is already {fo.request_status}")
    if fo.status == Status.INCOMPLETE:
        fo = replace(fo, status=fo.working_status(now))
    refuse_unless_fulfillable(fo, for_request=True)
    return submitted(fo, message, now)


def submitted(fo: FulfillmentOrder, message: str, now: str) -> Transition:
    """The request goes to the fulfillment service (by the merchant, or automatic fulfillment);
    one on the legacy workflow has it at once (no accept step)."""
    step = ("fulfillment_request.submitted", "fulfillment_service.fulfillment_requested")
    if fo.legacy:
        return _merchant_step(fo, step, message, now, RequestStatus.ACCEPTED, Status.IN_PROGRESS)
    return _merchant_step(fo, step, message, now, RequestStatus.SUBMITTED, fo.status)


def withdraw_request(fo: FulfillmentOrder, message: str, now: str) -> Transition:
    """Take back a request the service has not accepted yet: back to OPEN, and the service is told."""
    _refuse_on_legacy(fo)
    if fo.request_status in (RequestStatus.ACCEPTED, RequestStatus.CANCELLATION_REJECTED):
        raise TransitionRefused(
            f"the fulfillment service {fo.fulfillment_service} accepted the request: "
            "request a cancellation (with a note) instead"
        )
    _refuse_unless_request(fo, (RequestStatus.SUBMITTED,), "withdrawn")
    step = ("fulfillment_request.withdrawn", "fulfillment_service.request_withdrawn")
    return _merchant_step(fo, step, message, now, RequestStatus.UNSUBMITTED, fo.working_status(now))


def request_cancellation(fo: FulfillmentOrder, message: str, now: str) -> Transition:
    """The merchant asks the fulfillment service to cancel what it was asked to ship; the
    service accepts (the lines are back with the merchant) or rejects (it keeps shipping)."""
    _refuse_on_legacy(fo)
    _refuse_unless_request(
        fo, (RequestStatus.SUBMITTED, RequestStatus.ACCEPTED, RequestStatus.CANCELLATION_REJECTED), "asked to cancel"
    )
    step = ("cancellation_request.submitted", "fulfillment_service.cancellation_requested")
    return _merchant_step(fo, step, message, now, RequestStatus.CANCELLATION_REQUESTED, fo.status)


def _merchant_step(
    fo: FulfillmentOrder, step: tuple[str, str], message: str, now: str, request_status: RequestStatus, status: Status
) -> Transition:
    """A step the merchant takes with the fulfillment service (`step`: the event for the order's
    timeline, the one to the service): the note kept with the request, the statuses as the step
    leaves them, and both told with the note."""
    announced, to_the_service = step
    fo = fo.with_message("merchant", announced, message, now)
    fo = replace(fo, request_status=request_status, status=status, updated_at=now)
    return Transition(fo, (request_event(announced, fo, message), to_service(to_the_service, fo, message)))


def reset_to_unfulfilled(fo: FulfillmentOrder, note: str, now: str) -> Transition:
    """The service cancelled but could not say so: once a cancellation was requested, the merchant
    takes the lines back (OPEN) without its answer. The service may still ship them: the event
    warns so, for the order's timeline."""
    if fo.request_status != RequestStatus.CANCELLATION_REQUESTED:
        _refuse_unless_request(fo, (RequestStatus.CANCELLATION_REQUESTED,), "reset to unfulfilled")
    service = fo.service
    fo = fo.with_message("merchant", "fulfillment_order.reset_to_unfulfilled", note, now)
    fo = replace(fo, request_status=RequestStatus.UNSUBMITTED, status=fo.working_status(now), updated_at=now)
    why = "reset to unfulfilled by the merchant" + (f": {note}" if note else "")
    warning = (
        f"{service} was asked to cancel and never confirmed it: it may still ship these items; "
        "check with the fulfillment service before fulfilling them again"
    )
    return Transition(fo, (fo_event("fulfillment_order.reset_to_unfulfilled", fo, why, warning=warning),))


# --- the fulfillment service's answers ----------------------------------------------------

AnswerKind = Literal[
    "request_accepted",
    "request_rejected",
    "cancellation_accepted",
    "cancellation_rejected",
    "cannot_complete",
    "progress_reported",
]
"""Named as the answers' event types on fulfillment.responses.v1 (`fulfillment_service.<kind>`)."""


@dataclass(frozen=True)
class Answer:
    """What one kind of answer does to the fulfillment order."""

    answers: tuple[RequestStatus, ...]
    """The request statuses it answers; in any other it is refused."""
    action: str
    """What it does, as a refusal says it ("it cannot be <action> now")."""
    request_status: RequestStatus
    """The request after it: an answer finding the request so already is a retry (but see `status`)."""
    status: Status | None
    """The fulfillment order after it; None: open or in progress as its lines say."""
    request_event: str | None = None
    """Announces the request's new status, with the service's message."""
    fo_event: str | None = None
    """Announces the fulfillment order's new status, with `why`."""
    why: Callable[[FulfillmentServiceResponse], str] = lambda answer: ""
    retry_by_status: bool = False
    """A retry is recognised by the fulfillment order's status rather than the request's."""
    repeatable: bool = False
    """Given again and again (progress reports): only the same event (its id) is a retry."""
    workflows: tuple[ServiceWorkflow, ...] = (ServiceWorkflow.NEW, ServiceWorkflow.LEGACY)
    """The services' workflows it belongs to."""


ANSWERS: dict[AnswerKind, Answer] = {
    # The fulfillment service takes the work: the fulfillment order is in progress there.
    "request_accepted": Answer(
        (RequestStatus.SUBMITTED,), "accepted", RequestStatus.ACCEPTED, Status.IN_PROGRESS,
        request_event="fulfillment_request.accepted",
    ),
    # It will not ship it: back to the merchant, who may fulfil it, move it or submit it again
    # (the order shows REQUEST_DECLINED meanwhile).
    "request_rejected": Answer(
        (RequestStatus.SUBMITTED,), "rejected", RequestStatus.REJECTED, None,
        request_event="fulfillment_request.rejected",
    ),
    # It agrees to cancel: the lines are back with the merchant (OPEN, their stock still reserved
    # here), who may fulfil them, move them or request again.
    "cancellation_accepted": Answer(
        (RequestStatus.CANCELLATION_REQUESTED,), "cancelled", RequestStatus.CANCELLATION_ACCEPTED, None,
        request_event="cancellation_request.accepted",
    ),
    # It will not cancel (it has shipped or is shipping): it stays in progress.
    "cancellation_rejected": Answer(
        (RequestStatus.CANCELLATION_REQUESTED,), "refused a cancellation", RequestStatus.CANCELLATION_REJECTED,
        Status.IN_PROGRESS, request_event="cancellation_request.rejected",
    ),
    # It cannot ship what remains: INCOMPLETE and the request closed; the merchant decides what next.
    "cannot_complete": Answer(
        SHIPPING, "given up by the fulfillment service", RequestStatus.CLOSED, Status.INCOMPLETE,
        fo_event="fulfillment_order.incomplete", retry_by_status=True,
        why=lambda answer: f"{answer.fulfillment_service} cannot complete it"
        + (f": {answer.message}" if answer.message else ""),
    ),
    # Legacy workflow: how it is getting on (a message, kept; nothing changes).
    "progress_reported": Answer(
        (RequestStatus.ACCEPTED,), "reported on", RequestStatus.ACCEPTED, Status.IN_PROGRESS,
        request_event="fulfillment_request.progress_reported", repeatable=True, workflows=(ServiceWorkflow.LEGACY,),
    ),
}  # fmt: skip


def answered(kind: AnswerKind, fo: FulfillmentOrder, answer: FulfillmentServiceResponse, now: str) -> Transition | None:
    """The fulfillment service's answer of `kind` (see ANSWERS); None for a retry of one applied."""
    rule = ANSWERS[kind]
    _check_answering(fo, answer)
    retry = fo.status == rule.status if rule.retry_by_status else fo.request_status == rule.request_status
    if retry and not rule.repeatable:
        return None
    if fo.fulfillment_service and fo.workflow not in rule.workflows:
        raise TransitionRefused(
            f"fulfillment service {fo.fulfillment_service} uses the {fo.workflow} workflow: "
            f"a fulfillment order cannot be {rule.action} in it"
        )
    _refuse_unless_request(fo, rule.answers, rule.action)
    why = rule.why(answer)
    status = rule.status or fo.working_status(now)
    fo = replace(
        fo.with_message("fulfillment_service", f"fulfillment_service.{kind}", answer.message, now),
        request_status=rule.request_status,
        status=status,
        cancel_reason=why if status == Status.CANCELLED else fo.cancel_reason,
        updated_at=now,
    )
    reason = answer.reason if isinstance(answer, FulfillmentRequestRejection) else None
    events: list[CloudEvent] = []
    if rule.request_event:
        events.append(request_event(rule.request_event, fo, answer.message, reason))
    if rule.fo_event:
        events.append(fo_event(rule.fo_event, fo, why))
    return Transition(fo, tuple(events))


def accept_request(fo: FulfillmentOrder, answer: FulfillmentServiceResponse, now: str) -> Transition | None:
    return answered("request_accepted", fo, answer, now)


def reject_request(fo: FulfillmentOrder, answer: FulfillmentRequestRejection, now: str) -> Transition | None:
    return answered("request_rejected", fo, answer, now)


def accept_cancellation(fo: FulfillmentOrder, answer: FulfillmentServiceResponse, now: str) -> Transition | None:
    return answered("cancellation_accepted", fo, answer, now)


def reject_cancellation(fo: FulfillmentOrder, answer: FulfillmentServiceResponse, now: str) -> Transition | None:
    return answered("cancellation_rejected", fo, answer, now)


def cannot_complete(fo: FulfillmentOrder, answer: FulfillmentServiceResponse, now: str) -> Transition | None:
    return answered("cannot_complete", fo, answer, now)


def shipped_by_service(fo: FulfillmentOrder, answer: FulfillmentServiceShipment, now: str) -> Transition:
    """The fulfillment service shipped some or all lines (None: all that remain) with tracking:
    a fulfillment like the merchant's, and the buyer is emailed. Shipping everything closes
    the fulfillment order and the request."""
    _check_answering(fo, answer)
    _refuse_unless_request(fo, SHIPPING, "shipped by the fulfillment service")
    refuse_unless_fulfillable(fo, for_request=True)
    lines = (
        None if answer.line_items is None else [LineQuantity(li.line_item_id, li.quantity) for li in answer.line_items]
    )
    fo = fo.with_message("fulfillment_service", "fulfillment_service.shipped", answer.message, now)
    notify = fo.notify_customer_when_shipped
    return ship(fo, FulfillmentRequest(lines=lines, tracking=answer.tracking, notify_customer=notify), now)


def _check_answering(fo: FulfillmentOrder, answer: FulfillmentServiceResponse) -> None:
    """Only the fulfillment service the request went to (the location's) answers for it."""
    owner = fo.fulfillment_service
    if answer.fulfillment_service != owner:
        whose = f"its location is run by {owner!r}" if owner else "its location is not run by a fulfillment service"
        raise NotTheFulfillmentService(
            f"fulfillment service {answer.fulfillment_service!r} cannot answer for fulfillment order {fo.id}: {whose}"
        )


def _refuse_on_legacy(fo: FulfillmentOrder) -> None:
    if fo.legacy and fo.request_status in WITH_SERVICE:
        raise TransitionRefused(f"the fulfillment request is {fo.request_status}: {LEGACY_NO_CANCEL}")


def _refuse_unless_request(fo: FulfillmentOrder, allowed: Sequence[RequestStatus], action: str) -> None:
    if not fo.fulfillment_service:
        raise TransitionRefused(NO_SERVICE)
    if fo.status in TERMINAL:
        raise TransitionRefused(f"the fulfillment order is {fo.status}: it can no longer be {action}")
    if fo.status == Status.INCOMPLETE:
        raise TransitionRefused(
            f"the fulfillment order is INCOMPLETE (its fulfillment service gave up): it cannot be {action}; "
            "move it, request it again or fulfil it"
        )
    if fo.request_status not in allowed:
        expected = " or ".join(allowed)
        raise TransitionRefused(
            f"the fulfillment request is {fo.request_status}, not {expected}: it cannot be {action} now"
        )
