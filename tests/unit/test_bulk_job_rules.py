"""Bulk jobs: what a request may ask, and the job's bookkeeping (results, counts, lease, events)
as pure rules, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.fulfillment.api import BulkJobIn
from services.fulfillment.domain import bulk_job as rules
from services.fulfillment.domain.bulk_job import BulkAction, BulkJob, LeaseLost, Outcome
from services.fulfillment.domain.fulfillment_orders.model import InvalidRequest
from services.fulfillment.store import BULK_JOBS
from shared.bulk_jobs_api import bulk_job_view
from shared.catalog import BulkJobChanged
from shared.store import Change

T0 = "2030-01-01T10:00:00.000000+00:00"
T1 = "2030-01-01T10:00:10.000000+00:00"
T2 = "2030-01-01T10:01:00.000000+00:00"
LEASE = 30.0
ME, OTHER = "replica-a", "replica-b"


def ids(count: int) -> list[str]:
    return [f"fo-{n}" for n in range(count)]


def refused(action: BulkAction, fo_ids: list[str], parameters: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        rules.check_request(action, fo_ids, parameters)
    return caught.value


def view(job: BulkJob) -> dict[str, Any]:
    """The job as GET /bulk-jobs/{id} answers it (JSON)."""
    return bulk_job_view(BULK_JOBS, job).model_dump(mode="json")


def new_job(count: int = 3, action: BulkAction = BulkAction.FULFILL, **parameters: Any) -> BulkJob:
    return rules.start("job-1", action, parameters, ids(count), T0).document


def claimed(job: BulkJob, owner: str = ME, now: str = T0) -> BulkJob:
    change = rules.claim(job, owner, now, LEASE)
    assert change is not None
    return change.document


def recorded(job: BulkJob, index: int, outcome: Outcome = Outcome(), now: str = T1) -> Change[BulkJob]:
    change = rules.record(job, index, outcome, ME, now, LEASE)
    assert change is not None
    return change


def run_all(job: BulkJob, outcomes: list[Outcome]) -> tuple[BulkJob, list[str]]:
    """Record every result in turn, as the worker does; the job and the event types it emitted."""
    emitted: list[str] = []
    for outcome in outcomes:
        index = rules.next_pending(job)
        assert index is not None
        change = recorded(job, index, outcome)
        emitted += [event.type for event in change.events]
        job = change.document
    return job, emitted


# --- the request ---------------------------------------------------------------------------


def test_a_valid_request_for_each_action_passes() -> None:
    rules.check_request(BulkAction.FULFILL, ids(250), {"notify_customer": True, "tracking_company": "PostNord"})
    rules.check_request(BulkAction.FULFILL, ids(1), {})
    rules.check_request(BulkAction.HOLD, ids(2), {"reason": "HIGH_RISK_OF_FRAUD", "note": "check"})
    rules.check_request(BulkAction.RELEASE_HOLD, ids(2), {})
    rules.check_request(BulkAction.MOVE, ids(2), {"location_id": "wh-2"})


def test_no_fulfillment_orders_or_more_than_250_is_refused_naming_the_field() -> None:
    assert refused(BulkAction.FULFILL, [], {}).field == "fulfillment_order_ids"
    too_many = refused(BulkAction.FULFILL, ids(251), {})
    assert too_many.field == "fulfillment_order_ids"
    assert "250" in too_many.reason


def test_a_fulfillment_order_listed_twice_is_refused_at_its_position() -> None:
    error = refused(BulkAction.FULFILL, ["a", "b", "a"], {})
    assert error.field == "fulfillment_order_ids.2"
    assert "'a' is listed twice" in error.reason


@pytest.mark.parametrize(
    ("action", "field"), [(BulkAction.HOLD, "reason"), (BulkAction.MOVE, "location_id")]
)  # fmt: skip
def test_a_missing_parameter_is_refused_naming_it(action: BulkAction, field: str) -> None:
    error = refused(action, ids(2), {})
    assert (error.field, error.reason) == (field, f"required for the {action.value} action")


def test_a_parameter_the_action_does_not_take_is_refused_naming_it() -> None:
    error = refused(BulkAction.FULFILL, ids(2), {"location_id": "wh-2"})
    assert error.field == "location_id"
    assert "notify_customer, tracking_company" in error.reason
    assert refused(BulkAction.MOVE, ids(2), {"location_id": "wh-2", "note": "x"}).field == "note"


def test_platform_holds_cannot_be_placed_in_bulk() -> None:
    assert refused(BulkAction.HOLD, ids(2), {"reason": "POST_PURCHASE_UPSELL"}).field == "reason"


def test_the_request_model_names_unknown_actions_lists_and_reasons() -> None:
    with pytest.raises(ValidationError) as caught:
        BulkJobIn.model_validate({"action": "explode", "fulfillment_order_ids": ["ok", "not ok!"], "reason": "BORED"})
    fields = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
    assert fields == {"action", "fulfillment_order_ids.1", "reason"}
    with pytest.raises(ValidationError):
        BulkJobIn.model_validate({"action": "fulfill", "fulfillment_order_ids": ids(251)})


def test_the_request_model_gives_only_the_parameters_that_were_set() -> None:
    body = BulkJobIn.model_validate(
        {"action": "hold", "fulfillment_order_ids": ["a"], "reason": "OTHER", "location_id": None}
    )
    assert body.parameters() == {"reason": "OTHER"}


# --- the job's bookkeeping -------------------------------------------------------------------


def test_a_new_job_is_running_with_every_fulfillment_order_pending_and_no_results_shown() -> None:
    job = new_job(3)
    assert (job.status, job.total, job.done, job.succeeded, job.failed) == ("RUNNING", 3, 0, 0, 0)
    assert rules.next_pending(job) == 0
    shown = view(job)
    assert (shown["id"], shown["action"], shown["results"]) == ("job-1", "fulfill", [])


def test_results_are_kept_per_fulfillment_order_and_counted() -> None:
    job = claimed(new_job(3))
    job, emitted = run_all(job, [Outcome(), Outcome.failure("conflict", "ON_HOLD"), Outcome()])
    assert (job.status, job.done, job.succeeded, job.failed) == ("COMPLETED", 3, 2, 1)
    assert job.completed_at == T1
    assert view(job)["results"] == [
        {"fulfillment_order_id": "fo-0", "status": "succeeded", "error": None},
        {"fulfillment_order_id": "fo-1", "status": "failed", "error": {"code": "conflict", "message": "ON_HOLD"}},
        {"fulfillment_order_id": "fo-2", "status": "succeeded", "error": None},
    ]
    assert emitted == ["bulk_job.completed"]


def test_progress_is_announced_every_25_results_and_completion_once_with_the_failures() -> None:
    job = claimed(new_job(60))
    outcomes = [Outcome.failure("not_found", f"no {n}") if n % 20 == 0 else Outcome() for n in range(60)]
    emitted: list[str] = []
    last: Change[BulkJob] | None = None
    for outcome in outcomes:
        index = rules.next_pending(job)
        assert index is not None
        last = recorded(job, index, outcome)
        emitted += [event.type for event in last.events]
        job = last.document
    assert emitted == ["bulk_job.progress", "bulk_job.progress", "bulk_job.completed"]
    assert last is not None
    data = BulkJobChanged.model_validate(last.events[0].data)
    assert (data.bulk_job.status, data.bulk_job.succeeded, data.bulk_job.failed) == ("COMPLETED", 57, 3)
    assert [f.fulfillment_order_id for f in data.failures] == ["fo-0", "fo-20", "fo-40"]
    assert last.events[0].subject == "job-1"


def test_a_result_already_recorded_is_not_counted_twice() -> None:
    job = recorded(claimed(new_job(3)), 0).document
    assert rules.record(job, 0, Outcome.failure("conflict", "again"), ME, T1, LEASE) is None


def test_a_resumed_job_starts_at_the_first_fulfillment_order_without_a_result() -> None:
    job = claimed(new_job(3))
    job = recorded(job, 0).document
    assert rules.next_pending(job) == 1
    job, _ = run_all(job, [Outcome(), Outcome()])
    assert rules.next_pending(job) is None


# --- the lease (two replicas) ------------------------------------------------------------------


def test_a_job_leased_by_another_replica_cannot_be_claimed_until_the_lease_runs_out() -> None:
    job = claimed(new_job(), owner=OTHER, now=T0)
    assert rules.claim(job, ME, T1, LEASE) is None
    taken = claimed(job, owner=ME, now=T2)
    assert taken.lease_owner == ME
    assert taken.lease_until > T2


def test_a_job_handed_back_at_shutdown_can_be_claimed_at_once_by_another_replica() -> None:
    job = claimed(new_job(), owner=ME, now=T0)
    assert rules.release(job, OTHER) is None, "only the lease's owner hands it back"
    handed_back = rules.release(job, ME)
    assert handed_back is not None
    assert rules.claim(handed_back.document, OTHER, T1, LEASE) is not None  # T1: the lease had not run out


def test_recording_renews_the_lease_and_completion_releases_it() -> None:
    job = claimed(new_job(2), now=T0)
    job = recorded(job, 0, now=T2).document
    assert job.lease_until > T2
    job = recorded(job, 1, now=T2).document
    assert (job.lease_owner, job.lease_until) == (None, "")
    assert rules.claim(job, ME, T2, LEASE) is None


def test_a_replica_that_lost_its_lease_cannot_record_results() -> None:
    job = claimed(claimed(new_job(), owner=ME, now=T0), owner=OTHER, now=T2)
    with pytest.raises(LeaseLost):
        rules.record(job, 0, Outcome(), ME, T2, LEASE)


# --- the stored shape (services/fulfillment/store.py BULK_JOBS) -------------------------------


def test_a_job_is_stored_as_before_with_only_the_parameters_given() -> None:
    job, _ = run_all(
        claimed(new_job(2, BulkAction.HOLD, reason="OTHER")), [Outcome(), Outcome.failure("conflict", "no")]
    )
    stored = BULK_JOBS.dump(job)
    assert stored == {
        "id": "job-1", "action": "hold", "parameters": {"reason": "OTHER"}, "status": "COMPLETED", "total": 2,
        "done": 2, "succeeded": 1, "failed": 1,
        "items": [{"fulfillment_order_id": "fo-0", "status": "succeeded", "error": None},
                  {"fulfillment_order_id": "fo-1", "status": "failed", "error": {"code": "conflict", "message": "no"}}],
        "created_at": T0, "updated_at": T1, "completed_at": T1, "lease_owner": None, "lease_until": "",
        "started_by": None,
    }  # fmt: skip
    assert BULK_JOBS.load(stored) == job
