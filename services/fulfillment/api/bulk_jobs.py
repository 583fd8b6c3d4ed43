"""HTTP routes of bulk jobs: one action on up to 250 fulfillment orders, done in the background."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field, StrictBool

from services.fulfillment.bulk import BulkJobs
from services.fulfillment.domain import bulk_job as bulk_rules
from services.fulfillment.domain.bulk_job import MAX_FULFILLMENT_ORDERS, BulkAction, BulkJob, ItemStatus
from services.fulfillment.domain.fulfillment_orders.model import InvalidRequest
from services.fulfillment.store import BULK_JOBS
from shared.catalog import HoldReason
from shared.http import NotFound, RequestBody

from .common import READ, SAFE_ID, WRITE, invalid_field


class BulkJobIn(RequestBody):
    """One action on many fulfillment orders; the action's parameters sit beside it:
    fulfill (notify_customer, tracking_company), hold (reason, note), release_hold (reason: only
    that hold), move (location_id)."""

    action: BulkAction
    fulfillment_order_ids: Annotated[
        list[Annotated[str, Field(pattern=SAFE_ID.pattern)]], Field(min_length=1, max_length=MAX_FULFILLMENT_ORDERS)
    ]
    notify_customer: StrictBool | None = None
    tracking_company: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    reason: HoldReason | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None
    location_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    def parameters(self) -> dict[str, Any]:
        """The parameters the request gave (null counts as not given)."""
        given = self.model_dump(mode="json", exclude={"action", "fulfillment_order_ids"}, exclude_none=True)
        return {name: value for name, value in given.items() if name in self.model_fields_set}


def build_bulk_router(bulk_jobs: BulkJobs) -> APIRouter:
    router = APIRouter()

    @router.post("/bulk-jobs", status_code=202, dependencies=[WRITE], tags=["bulk jobs"])
    async def start_bulk_job(body: BulkJobIn) -> dict[str, Any]:
        """Apply one action to up to 250 fulfillment orders in the background; follow it with
        GET /bulk-jobs/{id} (or bulk_job.progress / bulk_job.completed on fulfillment.events.v1)."""
        try:
            job = await bulk_jobs.start(body.action, body.fulfillment_order_ids, body.parameters())
        except InvalidRequest as invalid:
            raise invalid_field(invalid.field, invalid.reason) from None
        return view(job)

    @router.get("/bulk-jobs/{job_id}", dependencies=[READ], tags=["bulk jobs"])
    async def get_bulk_job(job_id: str) -> dict[str, Any]:
        """Counts, and each fulfillment order's result (succeeded, or failed with the error) once it has one."""
        job = await bulk_jobs.get(job_id) if SAFE_ID.match(job_id) else None
        if job is None:
            raise NotFound("bulk job", job_id)
        return view(job)

    @router.get("/bulk-jobs", dependencies=[READ], tags=["bulk jobs"])
    async def list_bulk_jobs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """The most recent first, without their per-order results."""
        return {"items": [bulk_rules.snapshot(job).model_dump(mode="json") for job in await bulk_jobs.recent(limit)]}

    return router


def view(job: BulkJob) -> dict[str, Any]:
    """What GET /bulk-jobs/{id} shows: the counts, the parameters, and a result per fulfillment
    order that has one, in the order they were asked for."""
    stored = BULK_JOBS.dump(job)
    return {
        **bulk_rules.snapshot(job).model_dump(mode="json"),
        "parameters": stored["parameters"],
        "started_by": job.started_by,
        "results": [item for item in stored["items"] if item["status"] != ItemStatus.PENDING],
    }
