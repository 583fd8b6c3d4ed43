"""HTTP route of the pack run: `POST /pack-runs` runs it by hand and answers with its report."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.fulfillment.application.packing import PackRunReport
from services.fulfillment.domain.pack_run import Outcome, PackDecision
from services.fulfillment.packer import Packer

from .common import WRITE


class PackCheck(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    check: str
    ok: bool
    message: str


class PackDecisionView(BaseModel):
    order_id: str
    number: str = Field(description="as the merchant reads it, e.g. #1001")
    moved: bool
    outcome: Outcome
    message: str
    fulfillment_order_ids: list[str]
    steps: list[PackCheck]


class PackRunView(BaseModel):
    """A pack run's report: per order, moved or where the checks stopped and why."""

    id: str
    trigger: str
    started_at: str
    finished_at: str
    seconds: float
    orders_examined: int
    orders_moved: int
    fulfillment_orders_moved: int
    orders: list[PackDecisionView] = Field(description="each order examined")


def build_pack_run_router(packer: Packer) -> APIRouter:
    router = APIRouter()

    @router.post("/pack-runs", status_code=201, dependencies=[WRITE], tags=["pack runs"])
    async def run_pack_run() -> PackRunView:
        """Run the pack run now (as the periodic one does): every order that is paid, not a draft,
        not waiting, not held, with every shipping line in stock and reserved at its location
        moves to packing. The report says, per order, `moved` or where the checks stopped and why
        (`outcome`: draft, not_paid, waiting, not_routed, on_hold, scheduled, short, not_reserved,
        already_packing, nothing_to_pack), with each check in `steps`."""
        report = await packer.pack_runs.run("manual")
        packer.record(report)
        return report_view(report)

    return router


def report_view(report: PackRunReport) -> PackRunView:
    return PackRunView(
        id=report.id, trigger=report.trigger, started_at=report.started_at, finished_at=report.finished_at,
        seconds=round(report.seconds, 3), orders_examined=len(report.decisions), orders_moved=report.moved_orders,
        fulfillment_orders_moved=report.moved_fulfillment_orders,
        orders=[decision_view(decision) for decision in report.decisions],
    )  # fmt: skip


def decision_view(decision: PackDecision) -> PackDecisionView:
    return PackDecisionView(
        order_id=decision.order_id, number=decision.number, moved=decision.outcome == Outcome.MOVED,
        outcome=decision.outcome, message=decision.message, fulfillment_order_ids=list(decision.to_pack),
        steps=[PackCheck.model_validate(step) for step in decision.steps],
    )  # fmt: skip
