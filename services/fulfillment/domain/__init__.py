"""The fulfillment domain: pure rules, no I/O.

- `routing`: where a set of lines ships from (location priority, fewest fulfillment orders).
- `order_routing`: the per-order routing record (the plan, re-routes, cancellation).
- `fulfillment_order`: the fulfillment order's state machine and its fulfillments.
"""
