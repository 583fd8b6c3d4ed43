"""The data of the inventory service's events (inventory.events.v1): reservations, stock levels
and locations.
"""

from __future__ import annotations

from enum import StrEnum

from shared.catalog.contract import Contract


class ServiceWorkflow(StrEnum):
    """How a location's fulfillment service works its requests (Shopify's two workflows): `new`
    accepts or rejects each request and answers cancellation requests; `legacy` takes a request at
    once (no accept step) and, once it has it, cannot be asked to cancel."""

    NEW = "new"
    LEGACY = "legacy"


class StockLine(Contract):
    sku: str
    quantity: int


class Shortage(Contract):
    sku: str
    requested: int
    available: int
    seq: int | None = None  # the stock's change count when seen (InventoryLevel.seq); None: not known


class InventoryReservation(Contract):
    """Every inventory.reserved / released / committed / restocked event (keyed by order id).

    `lines` are the quantities this event moved, not running totals.
    """

    order_id: str
    fulfillment_order_id: str
    location_id: str
    lines: list[StockLine]


class InventoryReservationFailed(Contract):
    order_id: str
    fulfillment_order_id: str
    location_id: str
    lines: list[StockLine]
    shortages: list[Shortage]


class InventoryLevel(Contract):
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    available: int
    # Counts the changes of this (sku, location)'s stock: orders its snapshots, whatever the clocks
    # say. Absent in events from before it existed.
    seq: int | None = None
    # Where the sku is kept at the location (a shelf or bin code, e.g. "A-01-3"): pick lists walk
    # the bins in order. None: no bin set (or an event from before bins existed).
    bin: str | None = None


class Location(Contract):
    id: str
    name: str
    priority: int
    active: bool = True
    fulfillment_service: str | None = None
    workflow: ServiceWorkflow = ServiceWorkflow.NEW  # the fulfillment service's; absent before it existed
