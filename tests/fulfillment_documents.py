"""The fulfillment order's rules (services/fulfillment/domain/fulfillment_orders) applied to the
document the store keeps: loaded, decided, dumped through the store mapping. For tests that check
a rule and what it stores in one go (index fields included), as the service's store does it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Concatenate, ParamSpec, overload

from pydantic import TypeAdapter

from services.fulfillment.domain.fulfillment_orders import holds, lifecycle, service_requests, shipping
from services.fulfillment.domain.fulfillment_orders.model import (
    FulfillmentOrder,
    FulfillmentRequest,
    InvalidRequest,
    LineQuantity,
    PlanEntry,
    Transition,
)
from services.fulfillment.domain.fulfillment_orders.shipping import fulfillment_order_of
from services.fulfillment.store import FULFILLMENT_ORDERS, index_fields, sort_key
from shared.aggregates import Change, Document
from shared.catalog import OrderSnapshot
from shared.clock import NO_DEADLINE

__all__ = [
    "NO_DEADLINE", "FulfillmentRequest", "InvalidRequest", "LineQuantity", "fulfillment_order_of", "sort_key",
]  # fmt: skip

P = ParamSpec("P")
_PLAN_ENTRY = TypeAdapter(PlanEntry)


@overload
def stored(transition: Transition) -> Change[Document]: ...
@overload
def stored(transition: Transition | None) -> Change[Document] | None: ...
def stored(transition: Transition | None) -> Change[Document] | None:
    """A rule's decision as the store writes it."""
    return None if transition is None else Change(FULFILLMENT_ORDERS.dump(transition.fo), list(transition.events))


@overload
def on_document(
    rule: Callable[Concatenate[FulfillmentOrder, P], Transition],
) -> Callable[Concatenate[Document, P], Change[Document]]: ...
@overload
def on_document(
    rule: Callable[Concatenate[FulfillmentOrder, P], Transition | None],
) -> Callable[Concatenate[Document, P], Change[Document] | None]: ...
def on_document(
    rule: Callable[Concatenate[FulfillmentOrder, P], Transition | None],
) -> Callable[Concatenate[Document, P], Change[Document] | None]:
    def applied(fo: Document, /, *args: P.args, **kwargs: P.kwargs) -> Change[Document] | None:
        return stored(rule(FULFILLMENT_ORDERS.load(fo), *args, **kwargs))

    return applied


def plan_entry(entry: PlanEntry | Mapping[str, Any]) -> PlanEntry:
    """An entry of a routing plan, or one written as the store keeps it."""
    return entry if isinstance(entry, PlanEntry) else _PLAN_ENTRY.validate_python(entry)


def create(entry: PlanEntry | Mapping[str, Any], order: OrderSnapshot, now: str) -> Change[Document]:
    return stored(lifecycle.create(plan_entry(entry), order, now))


def tombstone(entry: PlanEntry | Mapping[str, Any], order: OrderSnapshot, reason: str, now: str) -> Change[Document]:
    return stored(lifecycle.tombstone(plan_entry(entry), order, reason, now))


cancel = on_document(lifecycle.cancel)
reservation_confirmed = on_document(lifecycle.reservation_confirmed)
reservation_failed = on_document(lifecycle.reservation_failed)
replace_out_of_stock = on_document(lifecycle.replace_out_of_stock)
reroute_recorded = on_document(lifecycle.reroute_recorded)
move = on_document(lifecycle.move)
set_fulfill_by = on_document(lifecycle.set_fulfill_by)
schedule = on_document(lifecycle.schedule)
open_scheduled = on_document(lifecycle.open_scheduled)
fulfil = on_document(shipping.fulfil)
update_tracking = on_document(shipping.update_tracking)
void_label = on_document(shipping.void_label)
cancel_fulfillment = on_document(shipping.cancel_fulfillment)
place_hold = on_document(holds.place_hold)
release_hold = on_document(holds.release_hold)
release_post_purchase_hold = on_document(holds.release_post_purchase_hold)
submit_request = on_document(service_requests.submit_request)
request_cancellation = on_document(service_requests.request_cancellation)
accept_request = on_document(service_requests.accept_request)
reject_request = on_document(service_requests.reject_request)
accept_cancellation = on_document(service_requests.accept_cancellation)
reject_cancellation = on_document(service_requests.reject_cancellation)
cannot_complete = on_document(service_requests.cannot_complete)
shipped_by_service = on_document(service_requests.shipped_by_service)


def is_out_of_stock_hold(fo: Document) -> bool:
    return FULFILLMENT_ORDERS.load(fo).is_out_of_stock_hold


def remaining_lines(fo: Document) -> list[dict[str, Any]]:
    return [asdict(line) for line in FULFILLMENT_ORDERS.load(fo).remaining_lines()]


def derived_fields(fo: Document) -> dict[str, object]:
    """The index fields of a stored fulfillment order (its shipments count for none of them)."""
    return index_fields(FULFILLMENT_ORDERS.load({**fo, "fulfillments": {}}))
