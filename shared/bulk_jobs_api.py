"""The routes every service's bulk jobs share: `GET /bulk-jobs/{id}` (counts, parameters, a result
per target) and `GET /bulk-jobs` (the most recent first). Each service adds its own
`POST /bulk-jobs`, whose body says its actions and parameters."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from shared import bulk_jobs as rules
from shared.bulk_jobs import BulkJob, BulkJobMapping
from shared.bulk_worker import BulkJobRunner
from shared.catalog.bulk_jobs import BulkJobSnapshot
from shared.http import NotFound
from shared.openapi import shows

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class BulkJobError(BaseModel):
    code: str
    message: str


class BulkJobResult(BaseModel):
    """One target's result, under the target's id field (`order_id` or `fulfillment_order_id`)."""

    model_config = ConfigDict(extra="allow")

    status: rules.ItemStatus
    error: BulkJobError | None


class BulkJobView(BulkJobSnapshot):
    """A bulk job as `GET /bulk-jobs/{id}` and `POST /bulk-jobs` show it (BulkJobMapping.view)."""

    parameters: dict[str, Any]
    started_by: str | None
    results: list[BulkJobResult]


class BulkJobList(BaseModel):
    items: list[BulkJobSnapshot]


def add_bulk_job_reads(
    router: APIRouter, runner: BulkJobRunner[Any, Any], mapping: BulkJobMapping[Any], read: Any, tag: str
) -> None:
    @router.get("/bulk-jobs/{job_id}", **shows(BulkJobView), dependencies=[read], tags=[tag])
    async def get_bulk_job(job_id: str) -> dict[str, Any]:
        """Counts, and each target's result (succeeded, or failed with the error) once it has one."""
        job = await runner.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise NotFound("bulk job", job_id)
        return mapping.view(job)

    @router.get("/bulk-jobs", **shows(BulkJobList), dependencies=[read], tags=[tag])
    async def list_bulk_jobs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """The most recent first, without their per-target results."""
        jobs: list[BulkJob[Any, Any]] = await runner.recent(limit)
        return {"items": [rules.snapshot(job).model_dump(mode="json") for job in jobs]}
