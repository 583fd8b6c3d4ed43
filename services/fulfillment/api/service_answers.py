"""HTTP routes a third-party fulfillment service calls: how external 3PLs integrate (internal ones
answer on fulfillment.responses.v1). The caller's token, scoped `fulfillment_service:<id>`, reaches
only the fulfillment orders at the locations that service runs (403 for another's). Each route is
one call of application.actions applying the rule of the Kafka answer of the same kind (the domain's
`ANSWERS`), so both channels follow one set of rules; a repeated answer changes nothing, and an
Idempotency-Key is honoured as on every POST. Shipments go through `POST .../fulfillments`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum

from fastapi import APIRouter

from services.fulfillment.application import Fulfillment, actions
from services.fulfillment.domain.fulfillment_orders.service_requests import AnswerKind
from shared.auth import SERVICE_SCOPE, Caller, Forbidden, Principal
from shared.catalog import FulfillmentRequestRejection, FulfillmentServiceResponse, RejectionReason
from shared.http import NotFound
from shared.openapi import example

from .bodies import MessageIn
from .common import SERVICES_ONLY, FulfillmentOrderView, fulfillment_order_view, known_id, refusals

TAGS: list[str | Enum] = ["fulfillment services"]
FO = "/fulfillment-orders/{fulfillment_order_id}"


class RejectIn(MessageIn):
    model_config = example({"reason": "INVENTORY_OUT_OF_STOCK", "message": "Out of stock until next week."})
    reason: RejectionReason = RejectionReason.OTHER


PLAIN_ANSWERS: dict[str, tuple[str, AnswerKind, str]] = {
    "accept_request": (
        "/fulfillment-request/accept", "request_accepted",
        "Take the request: the fulfillment order is IN_PROGRESS at the service (new workflow).",
    ),
    "accept_cancellation": (
        "/cancellation-request/accept", "cancellation_accepted",
        "Agree to cancel: the lines are back with the merchant, OPEN.",
    ),
    "reject_cancellation": (
        "/cancellation-request/reject", "cancellation_rejected",
        "Refuse to cancel (it is shipping): it stays IN_PROGRESS at the service.",
    ),
    "progress": (
        "/progress", "progress_reported",
        "How the work is going (legacy workflow): the message is kept on the fulfillment order.",
    ),
    "incomplete": (
        "/incomplete", "cannot_complete",
        "Give up what remains: INCOMPLETE, back to the merchant to move, request again or fulfil.",
    ),
}  # fmt: skip
"""The answers that take a message only, by route name: path under the fulfillment order, the answer, what it does."""


def build_service_router(fulfillment: Fulfillment) -> APIRouter:
    router = APIRouter()

    async def answered(
        fulfillment_order_id: str, who: Principal, kind: AnswerKind, body: MessageIn | None
    ) -> FulfillmentOrderView:
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
            service, message = fo.service, body.message if body else ""
            answer = FulfillmentServiceResponse(
                fulfillment_order_id=fo.id, fulfillment_service=service, message=message
            )
            if kind == "request_rejected":
                reason = body.reason if isinstance(body, RejectIn) else RejectionReason.OTHER
                answer = FulfillmentRequestRejection(
                    fulfillment_order_id=fo.id, fulfillment_service=service, message=message, reason=reason
                )
            saved = await actions.service_answered(fulfillment, kind, answer)
        return fulfillment_order_view(saved)

    def plain(kind: AnswerKind) -> Callable[..., Awaitable[FulfillmentOrderView]]:
        async def answer(fulfillment_order_id: str, who: Caller, body: MessageIn | None = None) -> FulfillmentOrderView:
            return await answered(fulfillment_order_id, who, kind, body)

        return answer

    for name, (path, kind, description) in PLAIN_ANSWERS.items():
        router.add_api_route(
            FO + path, plain(kind), methods=["POST"], name=name, description=description,
            dependencies=[SERVICES_ONLY], tags=TAGS,
        )  # fmt: skip

    @router.post(FO + "/fulfillment-request/reject", dependencies=[SERVICES_ONLY], tags=TAGS)
    async def reject_request(
        fulfillment_order_id: str, who: Caller, body: RejectIn | None = None
    ) -> FulfillmentOrderView:
        """Decline the request, with a reason and a message: back to the merchant (REQUEST_DECLINED)."""
        return await answered(fulfillment_order_id, who, "request_rejected", body)

    return router
