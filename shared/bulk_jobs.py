"""Bulk jobs, the rules every service's share: one merchant action applied to up to 250 targets
(fulfillment orders, or orders), like Shopify's bulk actions. Each target succeeds or fails on
its own (with the reason the single action would give); one failing never stops the others.

A job is one aggregate (`BulkJob`): the request, a result per target (in the order asked), the
counts, and a lease saying which replica works on it until when. Every rule here is pure: it
returns a new job (`dataclasses.replace`). Recording a result renews the lease and emits
`<prefix>.progress` every `PROGRESS_EVERY` results and `<prefix>.completed` with the last one, in
the same write as the result. What differs between services (the actions, their parameters, the
events' source and prefix, which id a target is) is a `JobKind` and the job's type parameters;
the worker that runs jobs is shared.bulk_worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Generic, TypeVar

from shared.aggregates import Change, Document, ModelMapping
from shared.catalog import BulkJobChanged, BulkJobFailure, BulkJobSnapshot, BulkJobStatus
from shared.clock import later
from shared.events import CloudEvent, new_event
from shared.rules import NamesAField, RuleViolation

MAX_TARGETS = 250
PROGRESS_EVERY = 25
"""A progress event after every this many results (not after each: 250 would be noise)."""

ActionT = TypeVar("ActionT", bound=StrEnum)
ParametersT = TypeVar("ParametersT")


class ItemStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LeaseLost(RuntimeError):
    """Another replica took the job over (this one stalled past its lease): stop working on it."""


class InvalidBulkRequest(NamesAField, RuleViolation):
    """The job could not run as asked: `field` says what, `reason` why (HTTP 422)."""


@dataclass(frozen=True)
class ItemError:
    code: str
    message: str


@dataclass(frozen=True)
class Item:
    """One target of the job (a fulfillment order or an order, by id) and its result."""

    id: str
    status: ItemStatus = ItemStatus.PENDING
    error: ItemError | None = None


@dataclass(frozen=True, kw_only=True)
class BulkJob(Generic[ActionT, ParametersT]):
    id: str
    action: ActionT
    parameters: ParametersT
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
    """What applying the action to one target gave: success, or the error it met."""

    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def failure(cls, code: str, message: str) -> Outcome:
        return cls(code, message)

    @property
    def succeeded(self) -> bool:
        return self.error_code is None


@dataclass(frozen=True)
class JobKind:
    """What one service's jobs are: who announces them, under which event types, and which id
    names each target (`id_field(action)`: "fulfillment_order_id", "order_id")."""

    source: str
    event_prefix: str
    id_field: Callable[[str], str]

    def ids_field(self, action: str) -> str:
        """The request's field listing the targets: order_id -> order_ids."""
        return self.id_field(action) + "s"


# --- the request -----------------------------------------------------------------------------


def check_targets(field: str, ids: Sequence[str]) -> None:
    """Refuse too few or too many targets, or one listed twice (InvalidBulkRequest naming the field)."""
    noun = field.removesuffix("_ids").replace("_", " ") + "s"
    if not ids:
        raise InvalidBulkRequest(field, f"name at least one of the {noun}")
    if len(ids) > MAX_TARGETS:
        raise InvalidBulkRequest(field, f"at most {MAX_TARGETS} {noun} per bulk job ({len(ids)} given)")
    seen: set[str] = set()
    for index, target in enumerate(ids):
        if target in seen:
            raise InvalidBulkRequest(f"{field}.{index}", f"{target!r} is listed twice")
        seen.add(target)


def check_parameters(action: str, takes: tuple[tuple[str, ...], tuple[str, ...]], given: Mapping[str, Any]) -> None:
    """`takes`: the parameters the action needs, and those it may take; refuse a missing one or a foreign one."""
    required, optional = takes
    for name in required:
        if given.get(name) is None:
            raise InvalidBulkRequest(name, f"required for the {action} action")
    for name in given:
        if name not in required + optional:
            allowed = ", ".join(required + optional) or "no parameters"
            raise InvalidBulkRequest(name, f"not a parameter of the {action} action (it takes {allowed})")


# --- the job's bookkeeping --------------------------------------------------------------------


def start(
    job_id: str,
    action: ActionT,
    parameters: ParametersT,
    ids: Sequence[str],
    now: str,
    started_by: str | None = None,
) -> Change[BulkJob[ActionT, ParametersT]]:
    """A new job, RUNNING, every target pending, claimable by any replica at once (the caller
    checked the request). `started_by` is the actor of everything it does, whichever replica runs it."""
    job = BulkJob(
        id=job_id, action=action, parameters=parameters, status=BulkJobStatus.RUNNING, total=len(ids),
        items=tuple(Item(target) for target in ids), created_at=now, updated_at=now, started_by=started_by,
    )  # fmt: skip
    return Change(job)


J = TypeVar("J", bound=BulkJob[Any, Any])


def claim(job: J, owner: str, now: str, lease_seconds: float) -> Change[J] | None:
    """Take (or renew) the lease on a running job; None when it is done or another replica's
    lease still runs."""
    if job.status != BulkJobStatus.RUNNING:
        return None
    if job.lease_owner not in (None, owner) and job.lease_until > now:
        return None
    return Change(replace(job, lease_owner=owner, lease_until=later(now, lease_seconds)))


def release(job: J, owner: str) -> Change[J] | None:
    """Hand a job back at shutdown, so another replica (or this one, restarted) picks it up at
    once instead of when the lease runs out; None when the lease is not this owner's."""
    if job.status != BulkJobStatus.RUNNING or job.lease_owner != owner:
        return None
    return Change(replace(job, lease_owner=None, lease_until=""))


def next_pending(job: BulkJob[Any, Any]) -> int | None:
    """Index of the first target without a result yet (a resumed job starts there)."""
    return next((i for i, item in enumerate(job.items) if item.status == ItemStatus.PENDING), None)


def record(
    kind: JobKind, job: J, index: int, outcome: Outcome, owner: str, now: str, lease_seconds: float
) -> Change[J] | None:
    """Keep one target's result and renew the lease; the progress or completed event goes out in
    the same write. None if that result is already kept (a repeat)."""
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
        return Change(job, [announce(kind, "completed", job, failures(kind, job))])
    if job.done % PROGRESS_EVERY == 0:
        return Change(job, [announce(kind, "progress", job, [])])
    return Change(job)


def failures(kind: JobKind, job: BulkJob[Any, Any]) -> list[BulkJobFailure]:
    id_field = kind.id_field(job.action)
    return [
        BulkJobFailure.model_validate({id_field: item.id, "code": item.error.code, "message": item.error.message})
        for item in job.items
        if item.status == ItemStatus.FAILED and item.error is not None
    ]


def snapshot(job: BulkJob[Any, Any]) -> BulkJobSnapshot:
    return BulkJobSnapshot(
        id=job.id, action=str(job.action), status=job.status, total=job.total, done=job.done,
        succeeded=job.succeeded, failed=job.failed, created_at=job.created_at, updated_at=job.updated_at,
        completed_at=job.completed_at,
    )  # fmt: skip


def announce(kind: JobKind, what: str, job: BulkJob[Any, Any], failed: list[BulkJobFailure]) -> CloudEvent:
    return new_event(
        kind.source, f"{kind.event_prefix}.{what}", job.id, BulkJobChanged(bulk_job=snapshot(job), failures=failed)
    )


# --- as stored -------------------------------------------------------------------------------


class BulkJobMapping(ModelMapping[J]):
    """A job as stored: each result under its target's id field (`fulfillment_order_id`, `order_id`),
    the parameters only those the request gave."""

    def __init__(self, job_type: type[J], kind: JobKind) -> None:
        super().__init__(job_type)
        self.kind = kind

    def load(self, document: Document) -> J:
        id_field = self.kind.id_field(document["action"])
        items = [{**item, "id": item.get("id", item.get(id_field))} for item in document["items"]]
        return super().load({**{k: v for k, v in document.items() if k != "version"}, "items": items})

    def stored(self, job: J) -> Document:
        document = super().stored(job)
        id_field = self.kind.id_field(job.action)
        document["items"] = [
            {id_field: item["id"], **{k: v for k, v in item.items() if k != "id"}} for item in document["items"]
        ]
        document["parameters"] = {name: value for name, value in document["parameters"].items() if value is not None}
        return document
