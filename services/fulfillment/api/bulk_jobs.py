"""HTTP routes of bulk jobs: one action on up to 250 fulfillment orders, or on the fulfillment
orders of up to 250 orders, done in the background."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field, StrictBool

from services.fulfillment.bulk import BulkJobs
from services.fulfillment.domain import bulk_job as bulk_rules
from services.fulfillment.domain.bulk_job import BulkAction
from services.fulfillment.domain.fulfillment_orders.model import InvalidRequest
from services.fulfillment.store import BULK_JOBS
from shared.bulk_jobs import MAX_TARGETS
from shared.bulk_jobs_api import BulkJobRequest, BulkJobView, add_bulk_job_reads, bulk_job_view
from shared.catalog import HoldReason
from shared.openapi import example

from .common import READ, SAFE_ID, WRITE, invalid_field

Ids = Annotated[list[Annotated[str, Field(pattern=SAFE_ID.pattern)]], Field(min_length=1, max_length=MAX_TARGETS)]


class BulkJobIn(BulkJobRequest):
    """One action on many fulfillment orders (`fulfillment_order_ids`) or orders (`order_ids`);
    the action's parameters sit beside it: fulfill (notify_customer, tracking_company), hold
    (reason, note), release_hold (reason: only that hold), move (location_id); on orders:
    mark_unfulfilled, request_fulfillment (notify_customer when shipped, message to the
    service), cancel_fulfillment_requests (message to the service)."""

    model_config = example(
        {"action": "hold", "fulfillment_order_ids": ["5f9c1d2e-7a3b-4c8d-9e0f-1a2b3c4d5e6f"], "reason": "OTHER",
         "note": "Stock count"}
    )  # fmt: skip

    multi_line_fields = frozenset({"message"})

    action: BulkAction
    fulfillment_order_ids: Ids | None = None
    order_ids: Ids | None = None
    notify_customer: StrictBool | None = None
    tracking_company: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    reason: HoldReason | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None
    location_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    message: Annotated[str, Field(max_length=1000)] | None = None

    def ids(self) -> list[str]:
        """The targets, from the field the action takes (422 naming it when the other is given)."""
        wanted = bulk_rules.KIND.ids_field(self.action)
        other = "fulfillment_order_ids" if wanted == "order_ids" else "order_ids"
        if getattr(self, other) is not None:
            raise invalid_field(other, f"the {self.action.value} action takes {wanted}")
        ids: list[str] = getattr(self, wanted) or []
        return ids


def build_bulk_router(bulk_jobs: BulkJobs) -> APIRouter:
    router = APIRouter()

    @router.post("/bulk-jobs", status_code=202, dependencies=[WRITE], tags=["bulk jobs"])
    async def start_bulk_job(body: BulkJobIn) -> BulkJobView:
        """Apply one action to up to 250 fulfillment orders or orders in the background; follow it with
        GET /bulk-jobs/{id} (or bulk_job.progress / bulk_job.completed on fulfillment.events.v1)."""
        try:
            job = await bulk_jobs.start(body.action, body.ids(), body.parameters())
        except InvalidRequest as invalid:
            raise invalid_field(invalid.field, invalid.reason) from None
        return bulk_job_view(BULK_JOBS, job)

    add_bulk_job_reads(router, bulk_jobs, BULK_JOBS, READ, "bulk jobs")
    return router
