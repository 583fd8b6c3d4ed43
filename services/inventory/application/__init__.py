"""Inventory's application layer: the use cases its routes and handlers call (load, apply a
rule, save; no HTTP, no Kafka).

- `inventory`: `Inventory`, every use case: locations, stock by hand, fulfillment's requests;
- `steps`: the reads and writes of one request, in the order that makes a crash harmless;
- `locations`: the location directory and this process's recent view of it;
- `faults`: test-only crash points between two writes.
"""

from __future__ import annotations

from services.inventory.application.faults import FaultPoints
from services.inventory.application.inventory import Inventory

__all__ = ["FaultPoints", "Inventory"]
