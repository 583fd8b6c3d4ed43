"""The fulfillment domain: pure rules, no I/O.

- `routing`: where a set of lines ships from (location priority, fewest fulfillment orders).
- `order_routing`: the per-order routing record (`RoutingRecord`: the plan, re-routes, cancellation).
- `fulfillment_orders`: the typed fulfillment order and its rules by concern (lifecycle, shipping,
  holds, service requests).
- `bulk_job`: the 250-order bulk actions (`BulkJob`).

Each aggregate is a frozen dataclass; how it is stored is services/fulfillment/store.py's business.
"""
