"""Fulfillment's bulk jobs at work: the shared worker (shared/bulk_worker.py: leases, resuming
where the results stop, each target acted on at most once) applying fulfillment's actions, on
fulfillment orders (application.actions) or on the fulfillment orders of orders
(application.order_actions), each with the job's id in the fulfillment order's inbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from services.fulfillment.application import Fulfillment, actions, order_actions
from services.fulfillment.domain import bulk_job as rules
from services.fulfillment.domain.bulk_job import KIND, BulkAction, BulkJob, Outcome, Parameters
from services.fulfillment.domain.fulfillment_orders.model import FulfillmentRequest, InvalidRequest, TransitionRefused
from shared.bulk_worker import BulkJobRunner, RunnerOptions
from shared.catalog import Tracking
from shared.store import AggregateStore


class BulkJobs(BulkJobRunner[BulkAction, Parameters]):
    def __init__(self, jobs: AggregateStore[BulkJob], app: Fulfillment, **options: Unpack[RunnerOptions]) -> None:
        super().__init__(jobs, KIND, service="fulfillment", **options)
        self.fulfillment = app

    async def start(self, action: BulkAction, ids: Sequence[str], parameters: Mapping[str, Any]) -> BulkJob:
        """Store the job (RUNNING, nothing done) and wake the worker; raises InvalidRequest."""
        rules.check_request(action, ids, parameters)
        if action == BulkAction.MOVE and await self.fulfillment.locations.get(parameters["location_id"]) is None:
            raise InvalidRequest("location_id", f"no location {parameters['location_id']!r} is known")
        return await self.store_job(action, Parameters.given(parameters), ids)

    def failure_of(self, error: Exception, target: str) -> Outcome | None:
        if isinstance(error, TransitionRefused):
            return Outcome.failure("conflict", str(error))
        if isinstance(error, InvalidRequest):
            return Outcome.failure("invalid_request", f"{error.field}: {error.reason}")
        if isinstance(error, order_actions.NoFulfillmentOrders):
            return Outcome.failure("not_found", str(error))
        if isinstance(error, LookupError):
            return Outcome.failure("not_found", f"fulfillment order {target!r} does not exist")
        return None

    async def act(self, job: BulkJob, target: str, once: str) -> None:
        """The single action the job's action stands for, on a fulfillment order or on an order's."""
        app, parameters = self.fulfillment, job.parameters
        match job.action:
            case BulkAction.FULFILL:
                request = FulfillmentRequest(
                    tracking=Tracking(company=parameters.tracking_company),
                    notify_customer=bool(parameters.notify_customer),
                )
                await actions.fulfil(app, target, request, once=once)
            case BulkAction.HOLD:
                assert parameters.reason is not None
                await actions.place_hold(app, target, parameters.reason, parameters.note or "", once=once)
            case BulkAction.RELEASE_HOLD:
                await actions.release_hold(app, target, parameters.reason, once=once)
            case BulkAction.MOVE:
                assert parameters.location_id is not None
                await actions.move(app, target, parameters.location_id, once=once)
            case BulkAction.MARK_UNFULFILLED:
                await order_actions.on_order(app, target, order_actions.mark_unfulfilled(), once=once)
            case BulkAction.REQUEST_FULFILLMENT:
                action = order_actions.request_fulfillment(parameters.message or "", parameters.notify_customer)
                await order_actions.on_order(app, target, action, once=once)
            case BulkAction.CANCEL_FULFILLMENT_REQUESTS:
                action = order_actions.cancel_fulfillment_requests(parameters.message or "")
                await order_actions.on_order(app, target, action, once=once)
