"""Inventory's rules: pure functions over typed values, no I/O.

- `locations`: the location directory (`LocationDirectory`): locations by unique priority,
  creating, updating and re-ordering them;
- `stock`: stock of one sku at one location (`StockLevel`) and what moves it: a count, an
  adjustment, a hold, its release, a commit (shipped), its cancellation, a restock;
- `requests`: what the events of fulfillment and orders ask of inventory (which lines to hold
  or ship, an order's cancellation note);
- `reservations`: the reservation record of a fulfillment order (`ReservationRecord`), brought
  up to date with the stock after each request, and the inventory.* events that answer it.

How each value is stored is services/inventory/mapping.py's business, not the rules'.
"""

from __future__ import annotations

from shared.rules import RuleViolation

SOURCE = "inventory"


class InventoryRuleViolation(RuleViolation):
    """The change would break a stock or location rule; the message says which and why."""
