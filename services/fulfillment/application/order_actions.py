"""What a merchant does to whole orders in bulk (Shopify's bulk actions on the orders list): each
action applies one rule of domain.fulfillment_orders to every fulfillment order of the order it
concerns, through `Fulfillment.act`, at most once per `once` (the bulk job's id).

A fulfillment order the action does not concern is passed over (`NotConcerned`: a merchant
location's for a request to a service, one with nothing shipped for mark_unfulfilled). The
check sits inside the rule, so a fulfillment order the job already changed (a resumed job: its
`once` is in the inbox, the rule is not run again) counts as done, not as passed over. The order
fails when one of its fulfillment orders refuses (with the single action's reason, naming the
fulfillment order when the order has several), or when none is concerned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from services.fulfillment.domain.fulfillment_orders import service_requests, shipping
from services.fulfillment.domain.fulfillment_orders.model import (
    NO_SERVICE,
    TERMINAL,
    FulfillmentOrder,
    InvalidRequest,
    Transition,
    TransitionRefused,
)
from shared.catalog import WITH_SERVICE, LabelStatus, RequestStatus
from shared.clock import now_iso

from .workflows import FoRule, Fulfillment

MAX_FULFILLMENT_ORDERS_PER_ORDER = 1000
"""More than an order can have (250 lines, each split at most across the locations)."""


class NotConcerned(TransitionRefused):
    """The action has nothing to do with this fulfillment order: passed over, not a failure."""


class NoFulfillmentOrders(LookupError):
    """Fulfillment has no fulfillment order of the order: unknown here, not paid or not routed yet."""


@dataclass(frozen=True)
class OrderAction:
    """One bulk action on orders: which of the order's fulfillment orders it concerns (the reason
    it passes one over, else None), the rule it applies to them, and why an order none of whose
    fulfillment orders is concerned fails."""

    passes_over: Callable[[FulfillmentOrder], str | None]
    rule: Callable[[FulfillmentOrder, str], Transition]
    none_concerned: str
    refuses_first: Callable[[FulfillmentOrder], str | None] = lambda fo: None
    """Checked on every fulfillment order before any is changed: the order fails whole, untouched."""


async def on_order(app: Fulfillment, order_id: str, action: OrderAction, *, once: str) -> list[FulfillmentOrder]:
    """Apply `action` to the order's fulfillment orders; the ones it changed (or had changed under
    `once` before). Raises NoFulfillmentOrders, or TransitionRefused with every reason."""
    fos = await app.fulfillment_orders.find(
        {"order_id": {"$eq": order_id}}, sort=[("sort_key", 1)], limit=MAX_FULFILLMENT_ORDERS_PER_ORDER
    )
    if not fos:
        raise NoFulfillmentOrders(
            f"order {order_id!r} has no fulfillment orders (unknown, not paid, or not routed yet)"
        )
    several = len(fos) > 1
    first = [(fo, why) for fo in fos if (why := action.refuses_first(fo))]
    if first:
        raise TransitionRefused(_reasons(first, several))
    acted: list[FulfillmentOrder] = []
    refused: list[tuple[FulfillmentOrder, str]] = []
    for fo in fos:
        try:
            acted.append(await app.act(fo.id, _concerned(action), once=once))
        except NotConcerned:
            continue
        except TransitionRefused as refusal:
            refused.append((fo, str(refusal)))
        except InvalidRequest as invalid:
            refused.append((fo, f"{invalid.field}: {invalid.reason}"))
    if refused:
        raise TransitionRefused(_reasons(refused, several))
    if not acted:
        raise TransitionRefused(action.none_concerned)
    return acted


def _concerned(action: OrderAction) -> FoRule:
    def rule(fo: FulfillmentOrder) -> Transition:
        why = action.passes_over(fo)
        if why is not None:
            raise NotConcerned(why)
        return action.rule(fo, now_iso())

    return rule


def _reasons(refused: list[tuple[FulfillmentOrder, str]], several: bool) -> str:
    """The single action's reason; with several fulfillment orders, each named."""
    if not several:
        return refused[0][1]
    return "; ".join(f"fulfillment order {fo.id}: {reason}" for fo, reason in refused)


# --- the actions ----------------------------------------------------------------------------


def mark_unfulfilled() -> OrderAction:
    """Cancel the order's fulfillments, so that it shows UNFULFILLED (stock back to reserved)."""
    return OrderAction(
        passes_over=lambda fo: None if _standing(fo) else "nothing of it is fulfilled",
        rule=shipping.cancel_fulfillments,
        none_concerned="nothing to mark unfulfilled: the order has no fulfillment to cancel",
        refuses_first=_purchased_label,
    )


def request_fulfillment(message: str = "", notify_customer: bool | None = None) -> OrderAction:
    """Submit each fulfillment order at a service location to its own service; `notify_customer`
    (None: yes, as ever) whether the buyer is emailed when the service ships it."""

    def submit(fo: FulfillmentOrder, now: str) -> Transition:
        if notify_customer is not None:
            fo = replace(fo, notify_customer_when_shipped=notify_customer)
        return service_requests.submit_request(fo, now, message)

    return OrderAction(
        passes_over=lambda fo: NO_SERVICE if not fo.fulfillment_service else _ended(fo),
        rule=submit,
        none_concerned="no fulfillment order of the order is at a location run by a fulfillment service "
        "and still to ship",
    )


CANCELLING: dict[RequestStatus, Callable[[FulfillmentOrder, str, str], Transition]] = {
    RequestStatus.SUBMITTED: service_requests.withdraw_request,
    RequestStatus.ACCEPTED: service_requests.request_cancellation,
    RequestStatus.CANCELLATION_REJECTED: service_requests.request_cancellation,
    RequestStatus.CANCELLATION_REQUESTED: service_requests.request_cancellation,  # refused: asked already
}
"""How a request is cancelled, by its status: one the service has not answered yet is withdrawn
(back to OPEN, the service is told); an accepted one by a cancellation request the service
answers; one whose cancellation was asked already is refused with the single action's reason."""


def cancel_fulfillment_requests(message: str = "") -> OrderAction:
    """For an order IN_PROGRESS at a fulfillment service: cancel each of its requests as its state says."""

    def passes_over(fo: FulfillmentOrder) -> str | None:
        if not fo.fulfillment_service:
            return NO_SERVICE
        if fo.request_status not in WITH_SERVICE:
            return f"its fulfillment request is {fo.request_status}"
        return _ended(fo)

    return OrderAction(
        passes_over=passes_over,
        rule=lambda fo, now: CANCELLING[fo.request_status](fo, message, now),
        none_concerned="the order has no fulfillment request in progress at a fulfillment service to cancel",
    )


def _standing(fo: FulfillmentOrder) -> list[str]:
    return sorted(f.id for f in fo.fulfillments.values() if f.status != "CANCELLED")


def _purchased_label(fo: FulfillmentOrder) -> str | None:
    labelled = [
        f.id for f in fo.fulfillments.values() if f.status != "CANCELLED" and f.label_status == LabelStatus.PURCHASED
    ]
    if not labelled:
        return None
    return f"fulfillment {labelled[0]} has a purchased shipping label: void the label before cancelling"


def _ended(fo: FulfillmentOrder) -> str | None:
    return f"it is {fo.status}" if fo.status in TERMINAL else None
