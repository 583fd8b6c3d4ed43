"""Fulfillment's bulk jobs: one merchant action applied to up to 250 fulfillment orders (fulfil,
hold, release_hold, move) or to the fulfillment orders of up to 250 orders (mark_unfulfilled,
request_fulfillment, cancel_fulfillment_requests), like Shopify's bulk actions. Each target
succeeds or fails on its own (the same reason the single action would give).

The job's bookkeeping (results, counts, lease, progress events) is the shared rules'
(shared/bulk_jobs.py); here are fulfillment's actions, their parameters and the request's checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared import bulk_jobs as shared_rules
from shared.aggregates import Change
from shared.bulk_jobs import (
    MAX_TARGETS,
    PROGRESS_EVERY,
    InvalidBulkRequest,
    ItemStatus,
    JobKind,
    LeaseLost,
    Outcome,
    claim,
    next_pending,
    release,
    snapshot,
)
from shared.bulk_jobs import BulkJob as SharedBulkJob
from shared.catalog import BulkJobFailure, HoldReason

from .fulfillment_orders.announcements import SOURCE
from .fulfillment_orders.model import SYSTEM_HOLDS, InvalidRequest

__all__ = [
    "KIND",
    "MAX_FULFILLMENT_ORDERS",
    "PROGRESS_EVERY",
    "BulkAction",
    "BulkJob",
    "ItemStatus",
    "LeaseLost",
    "Outcome",
    "Parameters",
    "check_request",
    "claim",
    "failures",
    "next_pending",
    "record",
    "release",
    "snapshot",
    "start",
]  # fmt: skip

MAX_FULFILLMENT_ORDERS = MAX_TARGETS


class BulkAction(StrEnum):
    # On fulfillment orders (fulfillment_order_ids):
    FULFILL = "fulfill"  # ship every remaining line
    HOLD = "hold"
    RELEASE_HOLD = "release_hold"
    MOVE = "move"
    # On orders (order_ids), each on the order's fulfillment orders:
    MARK_UNFULFILLED = "mark_unfulfilled"  # cancel their fulfillments
    REQUEST_FULFILLMENT = "request_fulfillment"  # submit those at a service location to their service
    CANCEL_FULFILLMENT_REQUESTS = "cancel_fulfillment_requests"  # withdraw or ask to cancel their requests


ORDER_ACTIONS = frozenset(
    {BulkAction.MARK_UNFULFILLED, BulkAction.REQUEST_FULFILLMENT, BulkAction.CANCEL_FULFILLMENT_REQUESTS}
)
"""The actions whose targets are orders (`order_ids`); the others' are fulfillment orders."""

PARAMETERS: dict[BulkAction, tuple[tuple[str, ...], tuple[str, ...]]] = {
    BulkAction.FULFILL: ((), ("notify_customer", "tracking_company")),
    BulkAction.HOLD: (("reason",), ("note",)),
    BulkAction.RELEASE_HOLD: ((), ("reason",)),
    BulkAction.MOVE: (("location_id",), ()),
    BulkAction.MARK_UNFULFILLED: ((), ()),
    # notify_customer: whether the buyer is emailed when the service ships (by default they are).
    BulkAction.REQUEST_FULFILLMENT: ((), ("notify_customer", "message")),
    BulkAction.CANCEL_FULFILLMENT_REQUESTS: ((), ("message",)),
}
"""Per action: the parameters it needs, and those it may take."""


def id_field(action: str) -> str:
    return "order_id" if action in ORDER_ACTIONS else "fulfillment_order_id"


KIND = JobKind(source=SOURCE, event_prefix="bulk_job", id_field=id_field)


@dataclass(frozen=True)
class Parameters:
    """The action's parameters, as the request gave them (None: not given)."""

    notify_customer: bool | None = None
    tracking_company: str | None = None
    reason: HoldReason | None = None
    note: str | None = None
    location_id: str | None = None
    message: str | None = None
    """The merchant's note to the fulfillment service (request_fulfillment, cancel_fulfillment_requests)."""

    @classmethod
    def given(cls, parameters: Mapping[str, Any]) -> Parameters:
        """The parameters of a request (as `check_request` let them through)."""
        reason = parameters.get("reason")
        return cls(**{**parameters, "reason": HoldReason(reason) if reason else None})


BulkJob = SharedBulkJob[BulkAction, Parameters]


def check_request(action: BulkAction, ids: Sequence[str], parameters: Mapping[str, Any]) -> None:
    """Refuse (InvalidRequest naming the field) what the job could not run as asked: too few or
    too many targets, one listed twice, a parameter missing or foreign to the action."""
    try:
        shared_rules.check_targets(KIND.ids_field(action), ids)
        shared_rules.check_parameters(action.value, PARAMETERS[action], parameters)
    except InvalidBulkRequest as invalid:
        raise InvalidRequest(invalid.field, invalid.reason) from None
    if action == BulkAction.HOLD and parameters["reason"] in SYSTEM_HOLDS:
        raise InvalidRequest("reason", f"{parameters['reason']} holds are placed by the platform, not by the merchant")


def start(
    job_id: str,
    action: BulkAction,
    parameters: Mapping[str, Any],
    ids: Sequence[str],
    now: str,
    started_by: str | None = None,
) -> Change[BulkJob]:
    """A new job, RUNNING, every target pending, claimable by any replica at once."""
    check_request(action, ids, parameters)
    return shared_rules.start(job_id, action, Parameters.given(parameters), ids, now, started_by)


def record(
    job: BulkJob, index: int, outcome: Outcome, owner: str, now: str, lease_seconds: float
) -> Change[BulkJob] | None:
    """Keep one target's result (see shared.bulk_jobs.record): bulk_job.progress / completed on
    fulfillment.events.v1."""
    return shared_rules.record(KIND, job, index, outcome, owner, now, lease_seconds)


def failures(job: BulkJob) -> list[BulkJobFailure]:
    return shared_rules.failures(KIND, job)
