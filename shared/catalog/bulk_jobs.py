"""The data of a bulk job's events (the fulfillment service's bulk actions over many
fulfillment orders, on fulfillment.events.v1): its progress and, at the end, what failed and why.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from shared.catalog.contract import Contract


class BulkJobStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"


class BulkJobFailure(Contract):
    multi_line_fields: ClassVar[frozenset[str]] = frozenset({"message"})

    fulfillment_order_id: str
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
