"""How a fulfillment order is stored: the one place that turns a stored document into the typed
`FulfillmentOrder` the rules take (`load`) and back (`dump`), with the fields fulfillment's queries
use (`index_fields`, see store.INDEXES). The stored shape is a public contract (earlier versions'
documents, the HTTP views, bench data): field names and value formats are the same as before the
model was typed.

It validates the document once per load; the rules then read attributes, never keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

from pydantic import TypeAdapter

from services.fulfillment.domain.fulfillment_orders.model import (
    TERMINAL,
    FulfillmentOrder,
    PlanEntry,
    Status,
    Transition,
)
from shared.aggregates import Change
from shared.catalog import HoldReason
from shared.clock import NO_DEADLINE, epoch
from shared.text import FROM_THE_STORE

Stored = dict[str, Any]
"""A fulfillment order as the store reads and writes it."""

_FULFILLMENT_ORDER = TypeAdapter(FulfillmentOrder)
_PLAN_ENTRY = TypeAdapter(PlanEntry)


def load(doc: Mapping[str, Any]) -> FulfillmentOrder:
    """The fulfillment order a stored document holds (its index fields and bookkeeping are ignored)."""
    return _FULFILLMENT_ORDER.validate_python(doc, context=FROM_THE_STORE)


def dump(fo: FulfillmentOrder) -> Stored:
    """The document to store: the fulfillment order, and the fields its queries use."""
    doc: Stored = _FULFILLMENT_ORDER.dump_python(fo, mode="json")
    # A hold the platform does not release by itself is stored without `release_at`, as ever.
    doc["holds"] = [
        {name: value for name, value in hold.items() if name != "release_at" or value is not None}
        for hold in doc["holds"]
    ]
    doc.update(index_fields(fo))
    return doc


def plan_entry(entry: Mapping[str, Any]) -> PlanEntry:
    """An entry of a stored routing plan, as creation reads it."""
    return _PLAN_ENTRY.validate_python(entry, context=FROM_THE_STORE)


def index_fields(fo: FulfillmentOrder) -> Stored:
    """The fields the queries filter and sort by, kept in step with the fulfillment order on every
    write. Each is one indexable value (see services/fulfillment/store.py INDEXES): times the
    sweep ranges over are epoch seconds (the embedded store scans for a filter on an RFC 3339
    string), and the listing's order is one string, so that a page resumes after a single value."""
    sort_fulfill_by = fo.fulfill_by or NO_DEADLINE
    upsell = [hold.release_at for hold in fo.holds if hold.reason == HoldReason.POST_PURCHASE_UPSELL]
    upsell_release_at = min((at for at in upsell if at), default=None) if fo.status not in TERMINAL else None
    scheduled = fo.fulfill_at if fo.status == Status.SCHEDULED else None
    return {
        "sort_fulfill_by": sort_fulfill_by,
        "sort_key": sort_key(sort_fulfill_by, fo.created_at, fo.id),
        "upsell_release_at": upsell_release_at,
        "upsell_release_epoch": epoch(upsell_release_at) if upsell_release_at else None,
        "opens_at_epoch": epoch(scheduled) if scheduled else None,
        "out_of_stock": fo.is_out_of_stock_hold,
        "skus": sorted({line.sku for line in fo.line_items}),
    }


def sort_key(fulfill_by: str, created_at: str, fo_id: str) -> str:
    """The listing's order (fulfill-by deadline, then creation, then id) as one string that sorts
    the same way: both times are RFC 3339 in UTC with microseconds, so of one width. It starts with
    a letter, because the embedded store takes a filter value that starts like a date for a date."""
    return f"k{fulfill_by}|{created_at}|{fo_id}"


@overload
def stored(transition: Transition) -> Change: ...
@overload
def stored(transition: Transition | None) -> Change | None: ...
def stored(transition: Transition | None) -> Change | None:
    """A rule's decision as the store writes it."""
    return None if transition is None else Change(dump(transition.fo), list(transition.events))


def on_stored(rule: Callable[[FulfillmentOrder], Transition | None]) -> Callable[[Stored], Change | None]:
    """A rule of the typed fulfillment order, applied to a stored one: loaded, decided, dumped."""
    return lambda doc: stored(rule(load(doc)))
