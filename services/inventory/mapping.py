"""How inventory's aggregates are stored: the one place that turns a stored document into the
typed value the rules take (`load`) and back (`dump`). The stored shapes are a public contract
(earlier versions' documents, the HTTP views, bench data): field names and value formats are the
same as before the values were typed, and documents written before a field existed still load.

- the location directory and a reservation record are written whole by an `AggregateStore`
  (`DIRECTORY`, `RECORDS`), an order's cancellation note too (`NOTES`, beside the records);
- a stock is written field by field by services/inventory/store.py (`StoredStock`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from services.inventory.domain.locations import LocationDirectory
from services.inventory.domain.requests import CancellationNote
from services.inventory.domain.reservations import ReservationRecord
from services.inventory.domain.stock import CommitState, Mark, StockLevel
from shared.aggregates import Document, ModelMapping


class Notes(ModelMapping[CancellationNote]):
    """A cancellation note written before 55e1523 named its order `order_id`."""

    def load(self, document: Document) -> CancellationNote:
        if "cancelled_order_id" not in document:
            document = {**document, "cancelled_order_id": document.get("order_id", "")}
        return super().load(document)


DIRECTORY = ModelMapping(LocationDirectory)
RECORDS = ModelMapping(ReservationRecord)
NOTES = Notes(CancellationNote)


def is_note(document: Mapping[str, Any]) -> bool:
    """A note written before 55e1523 has an `order_id`, so the query for an order's records
    finds it too: it is told apart by what a record always has."""
    return "fulfillment_order_id" not in document


# --- stock ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredStock:
    """A stock document as read or written: the stock with every mark it keeps (also those past
    their retention, which the store leaves out of what rules see), when each mark was first
    written (Mark.key -> epoch seconds), the keys of the last keyed requests that changed it, and
    whether it still carries `commits` (the history stocks kept before it moved to the records)."""

    level: StockLevel
    marked_at: Mapping[str, float] = field(default_factory=dict)
    recent_requests: tuple[str, ...] = ()
    has_commits: bool = False


def load_stock(doc: Mapping[str, Any]) -> StoredStock:
    marks = [
        (Mark(v["fulfillment_id"], v["fulfillment_order_id"], CommitState(v["state"]), int(v["quantity"])),
         float(v.get("at", 0.0)))
        for v in (doc.get("marks") or {}).values()
    ]  # fmt: skip
    level = StockLevel(
        location_id=doc["location_id"],
        sku=doc["sku"],
        on_hand=int(doc.get("on_hand", 0)),
        reserved=int(doc.get("reserved", 0)),
        holds={from_map_key(k): int(v) for k, v in (doc.get("holds") or {}).items()},
        marks={mark.key: mark for mark, _ in marks},
        seq=int(doc.get("seq", 0)),
        bin=doc.get("bin") or None,
    )
    return StoredStock(
        level, {mark.key: at for mark, at in marks}, tuple(doc.get("recent_requests", ())), "commits" in doc
    )


class StoredMark(TypedDict):
    fulfillment_id: str
    fulfillment_order_id: str
    state: str
    quantity: int
    at: float


class StockFields(TypedDict):
    """A stock's fields as stored (without its id, last change and delivery bookkeeping): holds
    and marks by fulfillment order and mark key, so that a change sets only the ones it changes."""

    location_id: str
    sku: str
    on_hand: int
    reserved: int
    holds: dict[str, int]
    marks: dict[str, StoredMark]
    seq: int
    recent_requests: list[str]
    bin: str | None


def dump_stock(stored: StoredStock) -> StockFields:
    """The stock's fields as stored."""
    level, at = stored.level, stored.marked_at
    return {
        "location_id": level.location_id, "sku": level.sku, "on_hand": level.on_hand, "reserved": level.reserved,
        "holds": {map_key(fo): q for fo, q in level.holds.items()},
        "marks": {map_key(k): _stored_mark(mark, at.get(k, 0.0)) for k, mark in level.marks.items()},
        "seq": level.seq, "recent_requests": list(stored.recent_requests), "bin": level.bin,
    }  # fmt: skip


def map_key(identifier: str) -> str:
    """An id made safe as a document field name ('.' and '$' have meaning in update paths)."""
    return identifier.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def from_map_key(key: str) -> str:
    return key.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def _stored_mark(mark: Mark, at: float) -> StoredMark:
    return {
        "fulfillment_id": mark.fulfillment_id, "fulfillment_order_id": mark.fulfillment_order_id,
        "state": mark.state.value, "quantity": mark.quantity, "at": at,
    }  # fmt: skip
