"""Paying and cancelling an order, and closing its post-purchase upsell window."""

from __future__ import annotations

from dataclasses import replace

from services.orders.domain.model import Cancellation, CancelReason, Order, OrderRuleViolation, Refund, snapshot
from services.orders.domain.timeline import announce, emit
from shared.aggregates import Change
from shared.catalog import (
    WITH_SERVICE,
    DisplayFulfillmentStatus,
    FinancialStatus,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    OrderCancelled,
    ServiceWorkflow,
)


def pay(order: Order, now: str) -> Change[Order] | None:
    """Mark a pending order paid. Paying a paid order again is a no-op, not a second event."""
    if order.cancelled_at:
        raise OrderRuleViolation("the order is cancelled and cannot be paid")
    if order.financial_status == FinancialStatus.PAID:
        return None
    if order.financial_status != FinancialStatus.PENDING:
        raise OrderRuleViolation(f"an order that is {order.financial_status} cannot be paid")
    order = replace(order, financial_status=FinancialStatus.PAID, paid_at=now, updated_at=now)
    return emit(order, [announce("order.paid", order)], now)


def cancel(
    order: Order,
    *,
    refund: Refund,
    restock: bool,
    notify_customer: bool,
    reason: CancelReason,
    now: str,
    bulk_job_id: str | None = None,
) -> Change[Order]:
    """Cancel the order, as merchants expect: money is only refunded if it was taken.

    A paid order refunded now becomes refunded; one refunded later (or not at all) stays
    paid until that happens elsewhere. An order never paid is voided: there is nothing to
    refund, whatever was asked. The event says what was asked and what was done, and the bulk
    job that asked (`bulk_job_id`), if one did.
    """
    if order.cancelled_at:
        raise OrderRuleViolation(f"the order was already cancelled at {order.cancelled_at}")
    if order.fulfillment_status == DisplayFulfillmentStatus.FULFILLED:
        raise OrderRuleViolation("the order is fully fulfilled and cannot be cancelled; cancel its fulfillments first")
    legacy = [fo for fo in order.fulfillment_orders.values() if _with_legacy_service(fo)]
    if legacy:
        raise OrderRuleViolation(
            f"fulfillment service {legacy[0].fulfillment_service} (legacy workflow) has the request of fulfillment "
            f"order {legacy[0].id}: it cannot be cancelled from here; contact the fulfillment service"
        )
    financial_status = order.financial_status
    was_paid = financial_status in (FinancialStatus.PAID, FinancialStatus.PARTIALLY_REFUNDED)
    refunded = was_paid and refund == Refund.NOW
    if refunded:
        financial_status = FinancialStatus.REFUNDED
    elif financial_status == FinancialStatus.PENDING:
        financial_status = FinancialStatus.VOIDED
    cancellation = Cancellation(refund=refund, refunded=refunded, restock=restock, notify_customer=notify_customer,
                                reason=reason)  # fmt: skip
    order = replace(order, financial_status=financial_status, cancelled_at=now, cancel_reason=reason,
                    cancellation=cancellation, updated_at=now)  # fmt: skip
    cancelled = OrderCancelled(order=snapshot(order), refund=refund.value, refunded=refunded, restock=restock,
                               notify_customer=notify_customer, reason=reason.value,
                               bulk_job_id=bulk_job_id)  # fmt: skip
    return emit(order, [("order.cancelled", cancelled)], now)


def complete_post_purchase(order: Order, now: str) -> Change[Order]:
    """The post-purchase upsell window closed: fulfillment may release its upsell hold."""
    if order.cancelled_at:
        raise OrderRuleViolation("the order is cancelled")
    if not order.post_purchase_pending:
        raise OrderRuleViolation("the order has no post-purchase offer pending")
    order = replace(order, post_purchase_pending=False, updated_at=now)
    return emit(order, [announce("order.post_purchase_completed", order)], now)


def _with_legacy_service(fo: FulfillmentOrderSnapshot) -> bool:
    """A legacy fulfillment service has this request: once requested, not cancelled from here."""
    return (
        fo.workflow == ServiceWorkflow.LEGACY
        and fo.request_status in WITH_SERVICE
        and fo.status not in (FulfillmentOrderStatus.CANCELLED, FulfillmentOrderStatus.CLOSED)
    )
