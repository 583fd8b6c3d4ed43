"""The routes every service's bulk jobs share: `GET /bulk-jobs/{id}` (counts, parameters, a result
per target) and `GET /bulk-jobs` (the most recent first). Each service adds its own
`POST /bulk-jobs`, whose body (a `BulkJobRequest`) says its actions and parameters."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, params
from pydantic import BaseModel, ConfigDict, JsonValue

from shared import bulk_jobs as rules
from shared.bulk_jobs import BulkJob, BulkJobMapping
from shared.bulk_worker import BulkJobRunner
from shared.catalog.bulk_jobs import BulkJobSnapshot
from shared.http import NotFound, RequestBody
from shared.text import FROM_THE_STORE

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class BulkJobRequest(RequestBody):
    """A `POST /bulk-jobs` body: the `action`, its targets (the `..._ids` fields) and the action's
    parameters beside them."""

    def parameters(self) -> dict[str, object]:
        """The parameters the request gave (null counts as not given), in the body's field order."""
        given = ((name, getattr(self, name)) for name in type(self).model_fields if name in self.model_fields_set)
        return {name: value for name, value in given if value is not None and not _targets_or_action(name)}


def _targets_or_action(field: str) -> bool:
    return field == "action" or field.endswith("_ids")


class BulkJobError(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    message: str


class BulkJobResult(BaseModel):
    """One target's result, under the target's id field (`order_id` or `fulfillment_order_id`)."""

    model_config = ConfigDict(extra="allow", from_attributes=True)

    status: rules.ItemStatus
    error: BulkJobError | None


class BulkJobView(BulkJobSnapshot):
    """A bulk job as `GET /bulk-jobs/{id}` and `POST /bulk-jobs` show it (`bulk_job_view`)."""

    parameters: dict[str, JsonValue]
    started_by: str | None
    results: list[BulkJobResult]


class BulkJobList(BaseModel):
    items: list[BulkJobSnapshot]


def bulk_job_view(mapping: BulkJobMapping[Any], job: BulkJob[Any, Any]) -> BulkJobView:
    """The counts, the parameters the request gave (as stored), and a result per target that has
    one, under its id field, in the order they were asked for."""
    id_field = mapping.kind.id_field(job.action)
    results = [
        BulkJobResult.model_validate({id_field: item.id, "status": item.status, "error": item.error})
        for item in job.items
        if item.status != rules.ItemStatus.PENDING
    ]
    shown = {"parameters": mapping.dump(job)["parameters"], "started_by": job.started_by, "results": results}
    # Checked when they came in (a message may hold line breaks): not checked again for control characters.
    return BulkJobView.model_validate({**dict(rules.snapshot(job)), **shown}, context=FROM_THE_STORE)


def add_bulk_job_reads(
    router: APIRouter, runner: BulkJobRunner[Any, Any], mapping: BulkJobMapping[Any], read: params.Depends, tag: str
) -> None:
    @router.get("/bulk-jobs/{job_id}", dependencies=[read], tags=[tag])
    async def get_bulk_job(job_id: str) -> BulkJobView:
        """Counts, and each target's result (succeeded, or failed with the error) once it has one."""
        job = await runner.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise NotFound("bulk job", job_id)
        return bulk_job_view(mapping, job)

    @router.get("/bulk-jobs", dependencies=[read], tags=[tag])
    async def list_bulk_jobs(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> BulkJobList:
        """The most recent first, without their per-target results."""
        jobs: list[BulkJob[Any, Any]] = await runner.recent(limit)
        return BulkJobList(items=[rules.snapshot(job) for job in jobs])
