"""HTTP routes a third-party fulfillment service calls: how external 3PLs integrate (internal ones
answer on fulfillment.responses.v1). The caller's token, scoped `fulfillment_service:<id>`, reaches
only the fulfillment orders at the locations that service runs (403 for another's). Each route is
one call of application.actions applying the rule of the Kafka answer of the same kind (the domain's
`ANSWERS`), so both channels follow one set of rules; a repeated answer changes nothing, and an
Idempotency-Key is honoured as on every POST. Shipments go through `POST .../fulfillments`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from services.fulfillment.application import Fulfillment, actions
from services.fulfillment.domain.fulfillment_orders.service_requests import AnswerKind
from shared.auth import SERVICE_SCOPE, Caller, Forbidden, Principal
from shared.catalog import FulfillmentRequestRejection, FulfillmentServiceResponse, RejectionReason
from shared.http import NotFound, RequestBody
from shared.openapi import shows

from .common import SERVICES_ONLY, FulfillmentOrderView, fulfillment_order_view, known_id, refusals

TAGS: list[str | Any] = ["fulfillment services"]
FO = "/fulfillment-orders/{fulfillment_order_id}"


class MessageIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"message": "Picked; ships tomorrow."}]})
    multi_line_fields = frozenset({"message"})

    message: Annotated[str, Field(max_length=1000)] = ""


class RejectIn(MessageIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "INVENTORY_OUT_OF_STOCK", "message": "Out of stock until next week."}]
        }
    )
    reason: RejectionReason = RejectionReason.OTHER


Answering = Callable[[str], FulfillmentServiceResponse]
"""The answer, given the id of the fulfillment service that runs the fulfillment order's location."""


def build_service_router(fulfillment: Fulfillment) -> APIRouter:
    router = APIRouter()

    async def answered(fulfillment_order_id: str, who: Principal, kind: AnswerKind, answer: Answering) -> Any:
        """Apply the caller's answer of `kind`, if it speaks for the fulfillment order's service."""
        fo = await fulfillment.fulfillment_orders.get(known_id("fulfillment order", fulfillment_order_id))
        if fo is None:
            raise NotFound("fulfillment order", fulfillment_order_id)
        if not who.speaks_for(fo.fulfillment_service):
            raise Forbidden(
                f"fulfillment order {fo.id} is not at a location run by a fulfillment service this token "
                "speaks for: a fulfillment service answers only for its own",
                [SERVICE_SCOPE],
            )
        with refusals():
            saved = await actions.service_answered(fulfillment, kind, answer(fo.service))
        return fulfillment_order_view(saved)

    def plain(fulfillment_order_id: str, body: MessageIn | None) -> Answering:
        message = body.message if body else ""
        return lambda service: FulfillmentServiceResponse(
            fulfillment_order_id=fulfillment_order_id, fulfillment_service=service, message=message
        )

    @router.post(
        FO + "/fulfillment-request/accept", **shows(FulfillmentOrderView), dependencies=[SERVICES_ONLY], tags=TAGS
    )
    async def accept_request(fulfillment_order_id: str, who: Caller, body: MessageIn | None = None) -> Any:
        """Take the request: the fulfillment order is IN_PROGRESS at the service (new workflow)."""
        return await answered(fulfillment_order_id, who, "request_accepted", plain(fulfillment_order_id, body))

    @router.post(
        FO + "/fulfillment-request/reject", **shows(FulfillmentOrderView), dependencies=[SERVICES_ONLY], tags=TAGS
    )
    async def reject_request(fulfillment_order_id: str, who: Caller, body: RejectIn | None = None) -> Any:
        """Decline the request, with a reason and a message: back to the merchant (REQUEST_DECLINED)."""
        reason, message = (body.reason, body.message) if body else (RejectionReason.OTHER, "")
        return await answered(
            fulfillment_order_id,
            who,
            "request_rejected",
            lambda service: FulfillmentRequestRejection(
                fulfillment_order_id=fulfillment_order_id, fulfillment_service=service, reason=reason, message=message
            ),
        )

    @router.post(
        FO + "/cancellation-request/accept", **shows(FulfillmentOrderView), dependencies=[SERVICES_ONLY], tags=TAGS
    )
    async def accept_cancellation(fulfillment_order_id: str, who: Caller, body: MessageIn | None = None) -> Any:
        """Agree to cancel: the lines are back with the merchant, OPEN."""
        return await answered(fulfillment_order_id, who, "cancellation_accepted", plain(fulfillment_order_id, body))

    @router.post(
        FO + "/cancellation-request/reject", **shows(FulfillmentOrderView), dependencies=[SERVICES_ONLY], tags=TAGS
    )
    async def reject_cancellation(fulfillment_order_id: str, who: Caller, body: MessageIn | None = None) -> Any:
        """Refuse to cancel (it is shipping): it stays IN_PROGRESS at the service."""
        return await answered(fulfillment_order_id, who, "cancellation_rejected", plain(fulfillment_order_id, body))

    @router.post(FO + "/progress", **shows(FulfillmentOrderView), dependencies=[SERVICES_ONLY], tags=TAGS)
    async def progress(fulfillment_order_id: str, who: Caller, body: MessageIn | None = None) -> Any:
        """How the work is going (legacy workflow): the message is kept on the fulfillment order."""
        return await answered(fulfillment_order_id, who, "progress_reported", plain(fulfillment_order_id, body))

    @router.post(FO + "/incomplete", **shows(FulfillmentOrderView), dependencies=[SERVICES_ONLY], tags=TAGS)
    async def incomplete(fulfillment_order_id: str, who: Caller, body: MessageIn | None = None) -> Any:
        """Give up what remains: INCOMPLETE, back to the merchant to move, request again or fulfil."""
        return await answered(fulfillment_order_id, who, "cannot_complete", plain(fulfillment_order_id, body))

    return router
