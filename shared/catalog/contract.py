"""The base of every event's data: what all contracts share, whichever service owns them.

Apart so that each topic's module (orders, fulfillment, inventory, ...) builds on it without
importing the others.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from shared.text import no_control_characters


class Contract(BaseModel):
    """An event's data. Text holds no control characters (shared/text.py) and asset and
    tracking URLs are ones a buyer may be sent to (shared/urls.py): an event that breaks
    either is not processed but dead-lettered with the reason."""

    model_config = ConfigDict(extra="ignore")
    multi_line_fields: ClassVar[frozenset[str]] = frozenset()  # may hold line breaks and tabs
    _plain_text = no_control_characters()
