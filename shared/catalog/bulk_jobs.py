"""The data of a bulk job's events: its progress and, at the end, what failed and why. The
fulfillment service's jobs (on fulfillment orders or on orders) announce them as bulk_job.* on
fulfillment.events.v1, the orders service's (cancel_orders) as order_bulk_job.* on
orders.events.v1.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from shared.catalog.contract import Contract


class BulkJobStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"


class BulkJobFailure(Contract):
    """One target that failed: a fulfillment order or an order (whichever the job acted on)."""

    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"message"})

    fulfillment_order_id: str | None = None
    order_id: str | None = None
    code: str
    message: str


class BulkJobSnapshot(Contract):
    """A bulk job's counts, without its per-order results (GET /bulk-jobs/{id} has those)."""

    id: str
    action: str
    status: BulkJobStatus
    total: int
    done: int
    succeeded: int
    failed: int
    created_at: str
    updated_at: str
    completed_at: str | None = None


class BulkJobChanged(Contract):
    """bulk_job.progress (every few orders) and bulk_job.completed, keyed by the job id; the
    completed event lists the orders that failed and why."""

    bulk_job: BulkJobSnapshot
    failures: list[BulkJobFailure] = []
