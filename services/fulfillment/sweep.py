"""The periodic sweep, like a warehouse pack run: every `sweep_interval_seconds` (a shop
setting, read on every tick so a change applies without a restart) it does the timed
transitions. Each replica runs its own; the rules make a second replica's pass a no-op."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Counter

from services.fulfillment.application import Fulfillment, sweep_pass

log = logging.getLogger("fulfillment.sweep")

TICK_SECONDS = 1.0
"""How often the settings are re-read: the longest a shortened interval waits to apply."""


class Sweeper:
    def __init__(self, fulfillment: Fulfillment, registry: CollectorRegistry) -> None:
        self.fulfillment = fulfillment
        self.passes = Counter(
            "fulfillment_sweep_passes", "Sweep passes run, by outcome.", ["outcome"], registry=registry
        )
        self.transitions = Counter(
            "fulfillment_sweep_transitions", "Transitions the sweep made, by kind.", ["kind"], registry=registry
        )

    async def run(self) -> None:
        last_pass = float("-inf")
        while True:
            interval = TICK_SECONDS
            try:
                interval = (await self.fulfillment.shop_settings()).sweep_interval_seconds
                if time.monotonic() - last_pass >= interval:
                    last_pass = time.monotonic()
                    await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.passes.labels("failed").inc()
                log.exception("sweep pass failed; the next one retries")
            await asyncio.sleep(min(interval, TICK_SECONDS))

    async def run_once(self) -> None:
        report = await sweep_pass(self.fulfillment)
        self.passes.labels("ok").inc()
        for kind in ("opened", "released", "rerouted", "repaired"):
            count = getattr(report, kind)
            if count:
                self.transitions.labels(kind).inc(count)
        if report.total():
            log.info(
                "sweep: %d opened, %d post-purchase holds released, %d out-of-stock holds re-routed, %d repaired",
                report.opened, report.released, report.rerouted, report.repaired,
            )  # fmt: skip
