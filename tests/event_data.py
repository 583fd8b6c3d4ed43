"""Reading an event's data in tests: JSON looked into without narrowing each step."""

from __future__ import annotations

from typing import Any

from shared.events import CloudEvent


def data_of(event: CloudEvent) -> dict[str, Any]:
    """`event.data` (a `dict[str, JsonValue]`), for a test to index into as loose JSON."""
    return event.data
