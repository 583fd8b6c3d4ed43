"""The orders service's bulk jobs: cancel up to 250 orders at once (Shopify's bulk "Cancel
orders"), each as `POST /orders/{id}/cancel` would (refund now / later / none, restock, notify
the customer), each failing on its own with that action's reason.

Orders own cancellation, so the job runs here, on the shared bulk-job machinery (shared/bulk_jobs.py
rules, shared/bulk_worker.py worker: leases, resuming where the results stop). Each order is
cancelled with the job's id in its inbox, in the same write, so a job resumed after a crash does
not cancel (nor announce, refund or email) an order twice. Announced as order_bulk_job.progress /
completed on orders.events.v1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Unpack

from fastapi import APIRouter
from pydantic import Field, StrictBool

from services.orders.application import Orders, UnknownOrder
from services.orders.domain import CancelReason, OrderRuleViolation, Refund
from services.orders.domain.model import SOURCE
from shared import bulk_jobs as rules
from shared.auth import requires
from shared.bulk_jobs import MAX_TARGETS, BulkJobMapping, InvalidBulkRequest, JobKind, Outcome
from shared.bulk_jobs import BulkJob as SharedBulkJob
from shared.bulk_jobs_api import JOB_ID, BulkJobRequest, BulkJobView, add_bulk_job_reads, bulk_job_view
from shared.bulk_worker import BulkJobRunner, RunnerOptions
from shared.http import ApiError
from shared.openapi import example
from shared.store import AggregateStore


class OrderBulkAction(StrEnum):
    CANCEL_ORDERS = "cancel_orders"


@dataclass(frozen=True)
class CancelParameters:
    """As `POST /orders/{id}/cancel` takes them (notify_customer: no unless given)."""

    refund: Refund
    restock: bool
    reason: CancelReason
    notify_customer: bool = False


PARAMETERS = {OrderBulkAction.CANCEL_ORDERS: (("refund", "restock", "reason"), ("notify_customer",))}
KIND = JobKind(source=SOURCE, event_prefix="order_bulk_job", id_field=lambda action: "order_id")
BulkJob = SharedBulkJob[OrderBulkAction, CancelParameters]
BULK_JOBS: BulkJobMapping[BulkJob] = BulkJobMapping(BulkJob, KIND)


class OrderBulkJobs(BulkJobRunner[OrderBulkAction, CancelParameters]):
    def __init__(self, jobs: AggregateStore[BulkJob], orders: Orders, **options: Unpack[RunnerOptions]) -> None:
        super().__init__(jobs, KIND, service="orders", **options)
        self.orders = orders

    async def start(self, action: OrderBulkAction, ids: Sequence[str], parameters: Mapping[str, Any]) -> BulkJob:
        """Store the job and wake the worker; raises InvalidBulkRequest naming the field."""
        rules.check_targets(KIND.ids_field(action), ids)
        rules.check_parameters(action.value, PARAMETERS[action], parameters)
        return await self.store_job(action, CancelParameters(**parameters), ids)

    async def act(self, job: BulkJob, target: str, once: str) -> None:
        given = job.parameters
        await self.orders.cancel(
            target, refund=given.refund, restock=given.restock, notify_customer=given.notify_customer,
            reason=given.reason, once=once, bulk_job_id=job.id,
        )  # fmt: skip

    def failure_of(self, error: Exception, target: str) -> Outcome | None:
        if isinstance(error, OrderRuleViolation):
            return Outcome.failure("conflict", str(error))
        if isinstance(error, UnknownOrder):
            return Outcome.failure("not_found", str(error))
        return None


# --- HTTP ----------------------------------------------------------------------------------------


class OrderBulkJobIn(BulkJobRequest):
    """cancel_orders on up to 250 orders, with the parameters of `POST /orders/{id}/cancel`."""

    model_config = example(
        {"action": "cancel_orders", "order_ids": ["0b7e2c8a-3f1d-4c52-9a7e-5d6f8e9a1b2c"], "refund": "now",
         "restock": True, "reason": "inventory"}
    )  # fmt: skip

    action: OrderBulkAction
    order_ids: Annotated[
        list[Annotated[str, Field(pattern=JOB_ID.pattern)]], Field(min_length=1, max_length=MAX_TARGETS)
    ]
    refund: Refund | None = None
    restock: StrictBool | None = None
    notify_customer: StrictBool | None = None
    reason: CancelReason | None = None


def build_bulk_router(jobs: OrderBulkJobs) -> APIRouter:
    router = APIRouter()

    @router.post("/bulk-jobs", status_code=202, dependencies=[requires("orders:write")], tags=["bulk jobs"])
    async def start_bulk_job(body: OrderBulkJobIn) -> BulkJobView:
        """Cancel up to 250 orders in the background; follow it with GET /bulk-jobs/{id} (or
        order_bulk_job.progress / completed on orders.events.v1). Fulfillment's bulk actions are
        `POST /bulk-jobs` on the fulfillment service."""
        try:
            job = await jobs.start(body.action, body.order_ids, body.parameters())
        except InvalidBulkRequest as invalid:
            detail = {"field": invalid.field, "reason": invalid.reason}
            raise ApiError(422, "invalid_request", f"invalid request: {invalid.field}", [detail]) from None
        return bulk_job_view(BULK_JOBS, job)

    add_bulk_job_reads(router, jobs, BULK_JOBS, requires("orders:read"), "bulk jobs")
    return router
