"""The fulfillment domain: pure rules, no I/O.

- `routing`: where a set of lines ships from (location priority, fewest fulfillment orders).
- `order_routing`: the per-order routing record (the plan, re-routes, cancellation).
- `fulfillment_orders`: the typed fulfillment order and its rules by concern (lifecycle, shipping,
  holds, service requests); `fulfillment_order`: the same rules over the stored document, for
  callers that still hold one.
- `bulk_job`: the 250-order bulk actions.
"""
