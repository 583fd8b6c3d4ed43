"""The routes every service's bulk jobs share: `GET /bulk-jobs/{id}` (counts, parameters, a result
per target) and `GET /bulk-jobs` (the most recent first). Each service adds its own
`POST /bulk-jobs`, whose body says its actions and parameters."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query

from shared import bulk_jobs as rules
from shared.bulk_jobs import BulkJob, BulkJobMapping
from shared.bulk_worker import BulkJobRunner
from shared.http import NotFound

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def add_bulk_job_reads(
    router: APIRouter, runner: BulkJobRunner[Any, Any], mapping: BulkJobMapping[Any], read: Any, tag: str
) -> None:
    @router.get("/bulk-jobs/{job_id}", dependencies=[read], tags=[tag])
    async def get_bulk_job(job_id: str) -> dict[str, Any]:
        """Counts, and each target's result (succeeded, or failed with the error) once it has one."""
        job = await runner.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise NotFound("bulk job", job_id)
        return mapping.view(job)

    @router.get("/bulk-jobs", dependencies=[read], tags=[tag])
    async def list_bulk_jobs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """The most recent first, without their per-target results."""
        jobs: list[BulkJob[Any, Any]] = await runner.recent(limit)
        return {"items": [rules.snapshot(job).model_dump(mode="json") for job in jobs]}
