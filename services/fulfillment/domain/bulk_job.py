"""A bulk job: one merchant action applied to up to 250 fulfillment orders, like Shopify's bulk
actions. Each fulfillment order succeeds or fails on its own (the same reason the single action
would give); one failing never stops the others.

The job is one aggregate (`BulkJob`): the request, a result per fulfillment order (in the order
asked), the counts, and a lease saying which replica works on it until when. Every rule here is
pure: it returns a new job (`dataclasses.replace`).
Recording a result renews the lease and emits bulk_job.progress every `PROGRESS_EVERY`
results, and bulk_job.completed with the last one, in the same write as the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from shared.aggregates import Change
from shared.catalog import BulkJobChanged, BulkJobFailure, BulkJobSnapshot, BulkJobStatus, HoldReason
from shared.clock import later
from shared.events import CloudEvent, new_event

from .fulfillment_orders.announcements import SOURCE
from .fulfillment_orders.model import SYSTEM_HOLDS, InvalidRequest

MAX_FULFILLMENT_ORDERS = 250
PROGRESS_EVERY = 25
"""A bulk_job.progress event after every this many results (not after each: 250 would be noise)."""


class BulkAction(StrEnum):
    FULFILL = "fulfill"  # ship every remaining line
    HOLD = "hold"
    RELEASE_HOLD = "release_hold"
    MOVE = "move"


class ItemStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


PARAMETERS: dict[BulkAction, tuple[tuple[str, ...], tuple[str, ...]]] = {
    BulkAction.FULFILL: ((), ("notify_customer", "tracking_company")),
    BulkAction.HOLD: (("reason",), ("note",)),
    BulkAction.RELEASE_HOLD: ((), ("reason",)),
    BulkAction.MOVE: (("location_id",), ()),
}
"""Per action: the parameters it needs, and those it may take."""


class LeaseLost(RuntimeError):
    """Another replica took the job over (this one stalled past its lease): stop working on it."""


@dataclass(frozen=True)
class Parameters:
    """The action's parameters, as the request gave them (None: not given)."""

    notify_customer: bool | None = None
    tracking_company: str | None = None
    reason: HoldReason | None = None
    note: str | None = None
    location_id: str | None = None

    @classmethod
    def given(cls, parameters: Mapping[str, Any]) -> Parameters:
        """The parameters of a request (as `check_request` let them through)."""
        reason = parameters.get("reason")
        return cls(**{**parameters, "reason": HoldReason(reason) if reason else None})


@dataclass(frozen=True)
class ItemError:
    code: str
    message: str


@dataclass(frozen=True)
class Item:
    """One fulfillment order of the job and its result (pending until it has one)."""

    fulfillment_order_id: str
    status: ItemStatus = ItemStatus.PENDING
    error: ItemError | None = None


@dataclass(frozen=True, kw_only=True)
class BulkJob:
    id: str
    action: BulkAction
    parameters: Parameters
    status: BulkJobStatus
    total: int
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    items: tuple[Item, ...]
    created_at: str
    updated_at: str
    completed_at: str | None = None
    lease_owner: str | None = None
    """The replica working on it, until `lease_until` (an RFC 3339 time; "" when nobody is)."""
    lease_until: str = ""
    started_by: str | None = None
    """The caller who started it: the actor of everything it does."""


@dataclass(frozen=True)
class Outcome:
    """What applying the action to one fulfillment order gave: success, or the error it met."""

    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def failure(cls, code: str, message: str) -> Outcome:
        return cls(code, message)

    @property
    def succeeded(self) -> bool:
        return self.error_code is None


def check_request(action: BulkAction, fulfillment_order_ids: Sequence[str], parameters: Mapping[str, Any]) -> None:
    """Refuse (InvalidRequest naming the field) what the job could not run as asked: too few or
    too many fulfillment orders, one listed twice, a parameter missing or foreign to the action."""
    if not fulfillment_order_ids:
        raise InvalidRequest("fulfillment_order_ids", "name at least one fulfillment order")
    if len(fulfillment_order_ids) > MAX_FULFILLMENT_ORDERS:
        raise InvalidRequest(
            "fulfillment_order_ids", f"at most {MAX_FULFILLMENT_ORDERS} fulfillment orders per bulk job"
        )
    seen: set[str] = set()
    for index, fo_id in enumerate(fulfillment_order_ids):
        if fo_id in seen:
            raise InvalidRequest(f"fulfillment_order_ids.{index}", f"{fo_id!r} is listed twice")
        seen.add(fo_id)
    required, optional = PARAMETERS[action]
    for name in required:
        if parameters.get(name) is None:
            raise InvalidRequest(name, f"required for the {action.value} action")
    for name in parameters:
        if name not in required + optional:
            takes = ", ".join(required + optional) or "no parameters"
            raise InvalidRequest(name, f"not a parameter of the {action.value} action (it takes {takes})")
    if action == BulkAction.HOLD and parameters["reason"] in SYSTEM_HOLDS:
        raise InvalidRequest("reason", f"{parameters['reason']} holds are placed by the platform, not by the merchant")


def start(
    job_id: str,
    action: BulkAction,
    parameters: Mapping[str, Any],
    fulfillment_order_ids: Sequence[str],
    now: str,
    started_by: str | None = None,
) -> Change[BulkJob]:
    """A new job, RUNNING, every fulfillment order pending, claimable by any replica at once.
    `started_by` (the caller) is the actor of everything the job does, whichever replica works on it."""
    check_request(action, fulfillment_order_ids, parameters)
    job = BulkJob(
        id=job_id,
        action=action,
        parameters=Parameters.given(parameters),
        status=BulkJobStatus.RUNNING,
        total=len(fulfillment_order_ids),
        items=tuple(Item(fo_id) for fo_id in fulfillment_order_ids),
        created_at=now,
        updated_at=now,
        started_by=started_by,
    )
    return Change(job)


def claim(job: BulkJob, owner: str, now: str, lease_seconds: float) -> Change[BulkJob] | None:
    """Take (or renew) the lease on a running job; None when it is done or another replica's
    lease still runs."""
    if job.status != BulkJobStatus.RUNNING:
        return None
    if job.lease_owner not in (None, owner) and job.lease_until > now:
        return None
    return Change(replace(job, lease_owner=owner, lease_until=later(now, lease_seconds)))


def release(job: BulkJob, owner: str) -> Change[BulkJob] | None:
    """Hand a job back at shutdown, so another replica (or this one, restarted) picks it up at
    once instead of when the lease runs out; None when the lease is not this owner's."""
    if job.status != BulkJobStatus.RUNNING or job.lease_owner != owner:
        return None
    return Change(replace(job, lease_owner=None, lease_until=""))


def next_pending(job: BulkJob) -> int | None:
    """Index of the first fulfillment order without a result yet (a resumed job starts there)."""
    return next((i for i, item in enumerate(job.items) if item.status == ItemStatus.PENDING), None)


def record(
    job: BulkJob, index: int, outcome: Outcome, owner: str, now: str, lease_seconds: float
) -> Change[BulkJob] | None:
    """Keep one fulfillment order's result and renew the lease; the progress or completed event
    goes out in the same write. None if that result is already kept (a repeat)."""
    if job.lease_owner != owner:
        raise LeaseLost(f"bulk job {job.id} is now worked on by {job.lease_owner}")
    item = job.items[index]
    if item.status != ItemStatus.PENDING:
        return None
    if outcome.error_code is None:
        item = replace(item, status=ItemStatus.SUCCEEDED)
    else:
        item = replace(item, status=ItemStatus.FAILED, error=ItemError(outcome.error_code, outcome.error_message or ""))
    job = replace(
        job,
        items=(*job.items[:index], item, *job.items[index + 1 :]),
        done=job.done + 1,
        succeeded=job.succeeded + outcome.succeeded,
        failed=job.failed + (not outcome.succeeded),
        updated_at=now,
        lease_until=later(now, lease_seconds),
    )
    if job.done == job.total:
        job = replace(job, status=BulkJobStatus.COMPLETED, completed_at=now, lease_owner=None, lease_until="")
        return Change(job, [_event("bulk_job.completed", job, failures(job))])
    if job.done % PROGRESS_EVERY == 0:
        return Change(job, [_event("bulk_job.progress", job, [])])
    return Change(job)


def failures(job: BulkJob) -> list[BulkJobFailure]:
    return [
        BulkJobFailure(fulfillment_order_id=item.fulfillment_order_id, code=item.error.code, message=item.error.message)
        for item in job.items
        if item.status == ItemStatus.FAILED and item.error is not None
    ]


def snapshot(job: BulkJob) -> BulkJobSnapshot:
    return BulkJobSnapshot(
        id=job.id, action=job.action.value, status=job.status, total=job.total, done=job.done,
        succeeded=job.succeeded, failed=job.failed, created_at=job.created_at, updated_at=job.updated_at,
        completed_at=job.completed_at,
    )  # fmt: skip


def _event(event_type: str, job: BulkJob, failed: list[BulkJobFailure]) -> CloudEvent:
    return new_event(SOURCE, event_type, job.id, BulkJobChanged(bulk_job=snapshot(job), failures=failed))
