"""How fulfillment's aggregates are stored: the indexes every query of the service is answered
from (`INDEXES`), and the mappings that turn a stored document into the typed aggregate the rules
take (`load`) and back (`dump`), with the fields the queries use (`index_fields`). The stored
shapes are a public contract (earlier versions' documents, the HTTP views, bench data): field
names and value formats are the same as before the aggregates were typed.

A mapping validates a document once per load; the rules then read attributes, never keys.
"""

from __future__ import annotations

from pymongo import IndexModel

from services.fulfillment.domain.bulk_job import KIND, BulkJob
from services.fulfillment.domain.fulfillment_orders.model import TERMINAL, FulfillmentOrder, Status
from services.fulfillment.domain.order_routing import RoutingRecord
from services.fulfillment.domain.pack_run import OrderView
from shared import bulk_worker
from shared.aggregates import Document, ModelMapping
from shared.bulk_jobs import BulkJobMapping
from shared.catalog import HoldReason, ServiceWorkflow
from shared.clock import NO_DEADLINE, epoch

OUT_OF_STOCK_HOLDS = "out_of_stock_holds"
PACK_ORDERS = "pack_orders"
PACK_RUN_LEASES = "pack_run_leases"
LEGACY_FULFILLMENTS = "legacy_fulfillments"

INDEXES: dict[str, list[IndexModel]] = {
    "fulfillment_orders": [
        # GET /fulfillment-orders: each filter, in the listing's order (`sort_key`, see
        # `index_fields`), so a page is an index range, whatever is stored.
        IndexModel([("order_id", 1), ("sort_key", 1)]),
        IndexModel([("status", 1), ("sort_key", 1)]),
        IndexModel([("location_id", 1), ("sort_key", 1)]),
        IndexModel([("location_id", 1), ("status", 1), ("sort_key", 1)]),
        IndexModel([("fulfillment_service", 1), ("sort_key", 1)]),
        IndexModel([("fulfillment_service", 1), ("status", 1), ("sort_key", 1)]),
        IndexModel([("sort_key", 1)]),
        # ?warehouse_status= (packing, ...), alone and at a location (a pick list's fulfillment orders).
        IndexModel([("warehouse_status", 1), ("sort_key", 1)]),
        IndexModel([("location_id", 1), ("warehouse_status", 1), ("sort_key", 1)]),
        # The sweep: due scheduled openings and post-purchase releases (epoch seconds, set only
        # while due to happen), out-of-stock holds oldest first, interrupted re-routes.
        IndexModel([("opens_at_epoch", 1)]),
        IndexModel([("upsell_release_epoch", 1)]),
        IndexModel([("out_of_stock", 1), ("created_at", 1)]),
        IndexModel([("reroute_pending", 1)]),
    ],
    # Plans the sweep is to check (and repair, if a crash left fulfillment orders uncreated).
    "routings": [IndexModel([("materialise_check_at", 1)])],
    "stock_view": [IndexModel([("sku", 1)])],
    OUT_OF_STOCK_HOLDS: [IndexModel([("sku", 1), ("created_at", 1)])],
    # The pack run: the orders it still has something to do with, oldest first (epoch seconds).
    PACK_ORDERS: [IndexModel([("pack_pending", 1), ("created_epoch", 1)])],
    "bulk_jobs": bulk_worker.INDEXES,
}
"""The indexes the service's queries use, by collection, created at start (idempotently)."""


class FulfillmentOrderMapping(ModelMapping[FulfillmentOrder]):
    """A fulfillment order as stored: its fields, and the fields its queries use."""

    def stored(self, fo: FulfillmentOrder) -> Document:
        """The fulfillment order's own fields, as stored (and shown), without the index fields."""
        document = super().stored(fo)
        # A hold the platform does not release by itself is stored without `release_at`, as ever.
        document["holds"] = [
            {name: value for name, value in hold.items() if name != "release_at" or value is not None}
            for hold in document["holds"]
        ]
        return document


def index_fields(fo: FulfillmentOrder) -> dict[str, object]:
    """The fields the queries filter and sort by, kept in step with the fulfillment order on every
    write. Each is one indexable value (see INDEXES): times the sweep ranges over are epoch
    seconds (the embedded store scans for a filter on an RFC 3339 string), and the listing's order
    is one string, so that a page resumes after a single value."""
    sort_fulfill_by = fo.fulfill_by or NO_DEADLINE
    upsell = [hold.release_at for hold in fo.holds if hold.reason == HoldReason.POST_PURCHASE_UPSELL]
    upsell_release_at = min((at for at in upsell if at), default=None) if fo.status not in TERMINAL else None
    scheduled = fo.fulfill_at if fo.status == Status.SCHEDULED else None
    return {
        "sort_fulfill_by": sort_fulfill_by,
        "sort_key": listing_key(fo),
        "upsell_release_at": upsell_release_at,
        "upsell_release_epoch": epoch(upsell_release_at) if upsell_release_at else None,
        "opens_at_epoch": epoch(scheduled) if scheduled else None,
        "out_of_stock": fo.is_out_of_stock_hold,
        "skus": fo.skus,
        "warehouse_status": fo.warehouse_status,
    }


FULFILLMENT_ORDERS = FulfillmentOrderMapping(FulfillmentOrder, index_fields)


def listing_key(fo: FulfillmentOrder) -> str:
    """Where the fulfillment order stands in the listing (its `sort_key`)."""
    return sort_key(fo.fulfill_by or NO_DEADLINE, fo.created_at, fo.id)


def sort_key(fulfill_by: str, created_at: str, fo_id: str) -> str:
    """The listing's order (fulfill-by deadline, then creation, then id) as one string that sorts
    the same way: both times are RFC 3339 in UTC with microseconds, so of one width. It starts with
    a letter, because the embedded store takes a filter value that starts like a date for a date."""
    return f"k{fulfill_by}|{created_at}|{fo_id}"


class RoutingRecordMapping(ModelMapping[RoutingRecord]):
    """An order's routing plan as stored: its entries' lines without a fulfilled quantity, their
    holds without the times they do not have."""

    def stored(self, routing: RoutingRecord) -> Document:
        document = super().stored(routing)
        document["order"] = {  # fields the snapshot gained later are stored only when they say something
            name: value
            for name, value in document["order"].items()
            if name not in _LATER_DEFAULTS or value != _LATER_DEFAULTS[name]
        }
        for entry in document["entries"]:
            entry["lines"] = [
                {name: value for name, value in line.items() if name != "fulfilled_quantity"} for line in entry["lines"]
            ]
            if entry.get("workflow") == ServiceWorkflow.NEW:  # the default: stored as before it existed
                del entry["workflow"]
            entry["holds"] = [
                {name: value for name, value in hold.items() if value is not None} for hold in entry["holds"]
            ]
        return document


ROUTING_RECORDS = RoutingRecordMapping(RoutingRecord)
_LATER_DEFAULTS: dict[str, object] = {"number": None, "waiting": False, "custom_status": None}
"""Order snapshot fields at their defaults, as a plan stored before they existed has them: absent."""


ORDER_VIEWS = ModelMapping(OrderView, lambda view: {"created_epoch": epoch(view.order.created_at)})
"""An order as the pack run sees it, with the field its query uses (`created_epoch`)."""


BULK_JOBS: BulkJobMapping[BulkJob] = BulkJobMapping(BulkJob, KIND)
"""A bulk job as stored: each result under `fulfillment_order_id` (or `order_id` for the actions
on orders), its parameters only those the request gave."""


def materialised_update(revision: int) -> dict[str, object]:
    """The fields `order_routing.materialised` sets, as one update (no read first)."""
    return {"materialised_revision": revision, "materialise_check_at": None}
