"""The periodic pack run: every `pack_run_interval_seconds` (a shop setting, 15 minutes unless
changed; re-read every tick, so a change applies without a restart) one replica, the one that
takes the lease for that interval, runs application.packing's pack run. The rules make any
overlap (a run by hand, a lease run out mid-run) harmless."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.fulfillment.application.packing import PackRunReport, PackRuns

log = logging.getLogger("fulfillment.pack_run")

TICK_SECONDS = 1.0
"""The shortest wait between two asks for a turn."""
MAX_WAIT_SECONDS = 30.0
"""The longest: a replica sleeps until the turn is due (as the lease says), at most this long, so
a shortened interval applies within it (at once on the replica that took the change); idle,
asking costs a couple of store commands a minute."""


class Packer:
    def __init__(self, pack_runs: PackRuns, registry: CollectorRegistry) -> None:
        self.pack_runs = pack_runs
        self.holder = f"replica-{uuid.uuid4()}"
        self.runs = Counter("fulfillment_pack_runs", "Pack runs, by trigger and outcome.", ["trigger", "outcome"],
                            registry=registry)  # fmt: skip
        self.moved = Counter(
            "fulfillment_pack_run_moved", "Fulfillment orders the pack runs moved to packing.", registry=registry
        )
        self.duration = Histogram("fulfillment_pack_run_seconds", "How long a pack run takes.", registry=registry)

    async def run(self) -> None:
        settings = self.pack_runs.app.settings
        while True:
            wait = TICK_SECONDS
            settings.changed.clear()  # a change from here on is read at the next turn
            try:
                interval = (await self.pack_runs.app.shop_settings()).pack_run_interval_seconds
                if await self.pack_runs.take_turn(interval, self.holder):
                    self.record(await self.pack_runs.run("schedule"))
                    wait = interval
                else:
                    wait = await self.pack_runs.until_next_turn(interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.runs.labels("schedule", "failed").inc()
                log.exception("pack run failed; the next turn retries")
            with contextlib.suppress(TimeoutError):  # woken early by a change of the interval here
                await asyncio.wait_for(settings.changed.wait(), min(max(wait, TICK_SECONDS), MAX_WAIT_SECONDS))

    def record(self, report: PackRunReport) -> None:
        """Count a run (by hand or scheduled) in the metrics and the log."""
        self.runs.labels(report.trigger, "ok").inc()
        self.moved.inc(report.moved_fulfillment_orders)
        self.duration.observe(report.seconds)
        if report.decisions:
            log.info("pack run %s (%s): %d orders looked at, %d moved to packing (%d fulfillment orders) in %.2f s",
                     report.id, report.trigger, len(report.decisions), report.moved_orders,
                     report.moved_fulfillment_orders, report.seconds)  # fmt: skip
