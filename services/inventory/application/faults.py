"""Test-only crash points, so that tests can kill inventory between two writes of a request."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class FaultPoints:
    """Test-only crash points. `FAULT_CRASH_AT` names one; the process dies there (like a kill)
    the first time it is reached, and the marker file `FAULT_MARKER` remembers that it did, so
    the restarted process carries on. Unset in production: then this does nothing."""

    def __init__(self, crash_at: str | None = None, marker: str | None = None) -> None:
        if crash_at and not marker:
            raise ValueError("FAULT_CRASH_AT needs FAULT_MARKER, or the process would crash at every restart")
        self.crash_at = crash_at
        self.marker = Path(marker) if marker else None
        if crash_at:
            log.warning("fault injection enabled: the process will crash once at %s", crash_at)

    def reached(self, name: str) -> None:
        if name != self.crash_at or self.marker is None or self.marker.exists():
            return
        self.marker.write_text(name)
        log.warning("fault point %s reached: crashing", name)
        os._exit(70)
