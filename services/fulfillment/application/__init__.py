"""The fulfillment service's use cases, called by the event handlers, the routes, the sweep and
the bulk jobs (no HTTP, no Kafka here): load what a rule needs, apply it through the store, chain
the steps that span several documents.

- `workflows`: `Fulfillment`, the stores and the workflows across documents: routing a paid order
  and creating its fulfillment orders, re-routes, inventory's news, the fulfillment services'
  answers;
- `actions`: what a merchant does to one fulfillment order (hold, fulfil, move, ...);
- `sweep`: the periodic pass over what is due or was left half done.
"""

from .sweep import SweepReport, sweep_pass
from .workflows import Fulfillment, UnknownFulfillmentOrder

__all__ = ["Fulfillment", "SweepReport", "UnknownFulfillmentOrder", "sweep_pass"]
