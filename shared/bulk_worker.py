"""Bulk jobs at work, for any service: a background task on every replica claims running jobs (a
lease in the job document, taken under optimistic concurrency) and applies the job's action to
one target after another, recording each result in the job. A service says what its actions do
(`BulkJobRunner.act`) and which errors are a target's failure (`BulkJobRunner.failure_of`).

The worker does not poll: a job started here wakes it, and jobs of other replicas (started
there, or left by a replica that crashed) are found by an indexed probe once per lease, which is
as soon as a crashed replica's lease can have run out anyway.

Resuming is exact: a job is picked up again where its results stop, after a crash or when a
stalled replica's lease runs out. `act` gets a `once` id (the job's) to apply the action with,
in the target's inbox in the same write, so a target the job already changed but whose result
was not yet recorded is not changed twice: the repeat is a no-op, recorded as succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypedDict

from prometheus_client import CollectorRegistry, Counter
from pymongo import IndexModel

from shared import bulk_jobs as rules
from shared.bulk_jobs import ActionT, BulkJob, JobKind, LeaseLost, Outcome, ParametersT
from shared.clock import now_iso
from shared.events import acting_as, current_actor, for_bulk_job
from shared.idempotency import derived_id
from shared.messaging import TRANSIENT_ERRORS
from shared.store import OUTBOX_PENDING_INDEX, AggregateStore

log = logging.getLogger("bulk_jobs")

MAX_JOBS_AT_ONCE = 4
"""Jobs one replica works on at the same time; more wait for the next free slot or another replica."""

MAX_RUNNING = 100
"""Running jobs one probe looks at (oldest first); more are looked at once these are done."""

INDEXES = [IndexModel([("status", 1), ("created_at", 1)]), IndexModel([("created_at", 1)]), OUTBOX_PENDING_INDEX]
"""A service's bulk_jobs collection: running jobs (the probe that resumes a crashed replica's),
the most recent first (GET /bulk-jobs), and the probe of the jobs' own outbox relay."""


class RunnerOptions(TypedDict, total=False):
    """How a service's runner works its jobs (BulkJobRunner's keyword arguments), passed through
    by each service's subclass unchanged."""

    registry: CollectorRegistry | None
    lease_seconds: float
    probe_seconds: float | None
    owner: str | None


class BulkJobRunner(ABC, Generic[ActionT, ParametersT]):
    """Starts, runs and resumes one service's bulk jobs (`kind`), stored in `jobs`."""

    def __init__(
        self,
        jobs: AggregateStore[BulkJob[ActionT, ParametersT]],
        kind: JobKind,
        registry: CollectorRegistry | None = None,
        *,
        service: str,
        lease_seconds: float = 30.0,
        probe_seconds: float | None = None,
        owner: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.kind = kind
        self.lease_seconds = lease_seconds
        # How often to look for jobs this replica was not woken for: once per lease by default.
        self.probe_seconds = lease_seconds if probe_seconds is None else probe_seconds
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.items = Counter(
            f"{service}_bulk_job_items",
            "Targets a bulk job acted on, by action and outcome.",
            ["action", "outcome"],
            registry=registry or CollectorRegistry(),
        )
        self._wake = asyncio.Event()
        self._working: dict[str, asyncio.Task[None]] = {}

    # --- what a service says -------------------------------------------------------------

    @abstractmethod
    async def act(self, job: BulkJob[ActionT, ParametersT], target: str, once: str) -> None:
        """The job's action on one target, applied at most once per `once`; a refusal raises."""

    @abstractmethod
    def failure_of(self, error: Exception, target: str) -> Outcome | None:
        """The target's failure that `error` (raised by `act`) stands for; None: not a refusal."""

    # --- the API's side -----------------------------------------------------------------

    async def store_job(
        self, action: ActionT, parameters: ParametersT, ids: Sequence[str]
    ) -> BulkJob[ActionT, ParametersT]:
        """Store the job (RUNNING, nothing done) and wake the worker (the caller checked the request)."""
        # Keyed by the request's Idempotency-Key where given: a retry after a crash finds its job.
        job_id = (derived_id("bulk-job") or str(uuid.uuid4())).replace("-", "")
        job = rules.start(job_id, action, parameters, ids, now_iso(), started_by=current_actor())
        saved = await self.jobs.create(job_id, job)
        self._wake.set()
        if saved is None:  # the same keyed request, run again after a crash
            existing = await self.jobs.get(job_id)
            assert existing is not None
            return existing
        return saved

    async def get(self, job_id: str) -> BulkJob[ActionT, ParametersT] | None:
        return await self.jobs.get(job_id)

    async def recent(self, limit: int) -> list[BulkJob[ActionT, ParametersT]]:
        return await self.jobs.find({}, sort=[("created_at", -1), ("_id", 1)], limit=limit)

    # --- the worker ---------------------------------------------------------------------

    async def run(self) -> None:
        """The background task: claim what is claimable, work on it, wait to be woken (a job started
        here, or one finished, which frees a slot) or for the next probe (a job whose replica died
        is claimable when its lease runs out)."""
        try:
            while True:
                try:
                    await self.claim_and_start()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("looking for bulk jobs failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(self.probe_seconds, 0.1))
                self._wake.clear()
        finally:
            for task in self._working.values():
                task.cancel()
            await asyncio.gather(*self._working.values(), return_exceptions=True)
            await self._release_leases()

    async def _release_leases(self) -> None:
        """At shutdown: the jobs this replica held are handed back for others to resume at once."""
        for job_id in list(self._working):
            try:
                await self.jobs.apply(job_id, lambda current: rules.release(current, self.owner), missing=_vanished())
            except Exception:  # shutting down: the lease then simply runs out
                log.warning("could not hand bulk job %s back; it resumes when its lease runs out", job_id)

    async def claim_and_start(self) -> None:
        self._working = {job_id: task for job_id, task in self._working.items() if not task.done()}
        now = now_iso()
        # Leases are compared here, not in the query: the embedded store compares time strings
        # to the second only and never matches "" (a job nobody claimed yet) with $lt.
        running = await self.jobs.find(
            {"status": {"$eq": "RUNNING"}}, sort=[("created_at", 1), ("_id", 1)], limit=MAX_RUNNING
        )
        for job in running:
            if len(self._working) >= MAX_JOBS_AT_ONCE:
                return
            if job.id in self._working or rules.claim(job, self.owner, now, self.lease_seconds) is None:
                continue
            claimed = await self.jobs.apply(
                job.id,
                lambda current: rules.claim(current, self.owner, now_iso(), self.lease_seconds),
                missing=_vanished(),
            )
            if claimed is not None:
                task = asyncio.create_task(self.work(claimed), name=f"bulk-job-{job.id}")
                task.add_done_callback(lambda _: self._wake.set())  # a slot is free: look again
                self._working[job.id] = task

    async def drain(self) -> None:
        """Wait until the jobs this replica is working on are done (or it lost them)."""
        await asyncio.gather(*self._working.values(), return_exceptions=True)

    async def work(self, job: BulkJob[ActionT, ParametersT]) -> None:
        """Apply the action to each target still pending, recording each result, for the caller
        who started the job (the actor of its events)."""
        with acting_as(job.started_by), for_bulk_job(job.id):
            await self._work(job)

    async def _work(self, job: BulkJob[ActionT, ParametersT]) -> None:
        log.info("bulk job %s (%s): %d of %d done, working on it", job.id, job.action, job.done, job.total)
        try:
            while (index := rules.next_pending(job)) is not None:
                outcome = await self.apply_once(job, job.items[index].id)
                saved = await self._record(job.id, index, outcome)
                self.items.labels(job.action, "succeeded" if outcome.succeeded else "failed").inc()
                job = saved or await self._reload(job.id)
            log.info("bulk job %s completed: %d succeeded, %d failed", job.id, job.succeeded, job.failed)
        except LeaseLost as lost:
            log.warning("%s", lost)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The store is unreachable (or worse): this replica retries at its next poll, others once the lease ran out.
            log.exception("bulk job %s stopped; it is picked up again", job.id)

    async def apply_once(self, job: BulkJob[ActionT, ParametersT], target: str) -> Outcome:
        """The job's action on one target, at most once (the job id goes in its inbox). A refusal
        is this target's failure; the store being unreachable is not (raised)."""
        try:
            await self.act(job, target, once_id(job.id))
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            failure = self.failure_of(error, target)
            if failure is not None:
                return failure
            log.exception("bulk job %s: unexpected error on %s", job.id, target)
            return Outcome.failure("error", f"unexpected error: {type(error).__name__}")
        return Outcome()

    async def _record(self, job_id: str, index: int, outcome: Outcome) -> BulkJob[ActionT, ParametersT] | None:
        now = now_iso()
        return await self.jobs.apply(
            job_id,
            lambda current: rules.record(self.kind, current, index, outcome, self.owner, now, self.lease_seconds),
            missing=_vanished(),
        )

    async def _reload(self, job_id: str) -> BulkJob[ActionT, ParametersT]:
        found = await self.jobs.get(job_id)
        if found is None:
            raise LookupError(f"bulk job {job_id} vanished")
        return found


def once_id(job_id: str) -> str:
    """The id a job's action is applied under, in each target's inbox."""
    return f"bulk-job/{job_id}"


def _vanished() -> LookupError:
    return LookupError("the bulk job vanished")
