"""The fulfillment order (one per order and location), by concern, each module the Shopify help
page it follows:

- `model`: the typed fulfillment order (`FulfillmentOrder`, its lines and holds), its statuses,
  the refusals, and `Transition` (what a rule returns);
- `lifecycle`: creation from the routing plan, reservations, re-routes, cancellation, moving,
  scheduling and opening, automatic fulfillment;
- `shipping`: fulfillments (all or some lines), tracking, labels, cancelling a shipment;
- `holds`: placing and releasing holds;
- `service_requests`: requests to a location's fulfillment service and its answers (`ANSWERS`);
- `announcements`: the events the transitions emit;

Rules take a `FulfillmentOrder` and return a new one; how it is stored is
services/fulfillment/store.py's business.
"""
