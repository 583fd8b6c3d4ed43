"""The orders domain: the typed order and its pure rules, no I/O. Each rule returns the order as
it should be now and the events that say so (a `Change`), or raises OrderRuleViolation (or
InvalidOrder) with the reason.

- `model`: the typed `Order` (its lines, address, cancellation, timeline entries, fulfillment-order
  snapshots), `NewOrder` (what a merchant places), the refusals;
- `placing`: the merchant-facing checks of a new order, and placing it;
- `lifecycle`: paying, cancelling, closing the post-purchase window;
- `fulfillment`: what fulfillment's events tell the order (display status, fulfill-by deadline);
- `timeline`: the order's timeline and the events that go on it;
- `narration`: what each event says on the timeline (a one-line message and its details);
- `warehouse`: the order's number, comments, waiting flag, custom status and warehouse status;
- `editing`: editing the lines and address of an order placed or in packing.

How an order is stored is services/orders/store.py's business.
"""

from services.orders.domain.editing import OrderEdit, edit
from services.orders.domain.fulfillment import (
    display_fulfillment_status,
    earliest_fulfill_by,
    record_fulfillment_order,
    snapshot_digest,
)
from services.orders.domain.lifecycle import cancel, complete_post_purchase, pay
from services.orders.domain.model import (
    Cancellation,
    CancelReason,
    Comment,
    InvalidOrder,
    NewLine,
    NewOrder,
    Order,
    OrderRuleViolation,
    Problem,
    Refund,
    TimelineDetail,
    TimelineEntry,
    is_draft,
    snapshot,
)
from services.orders.domain.narration import Narration, humanised, narrate
from services.orders.domain.placing import CURRENCIES, MAX_ORDER_BYTES, check_new_order, place
from services.orders.domain.timeline import record_on_timeline, timeline, timeline_entry
from services.orders.domain.warehouse import (
    FIRST_NUMBER,
    add_comment,
    number,
    set_custom_status,
    set_waiting,
    shipped_quantities,
    warehouse_status,
)
from shared.catalog import Address

__all__ = [
    "CURRENCIES", "FIRST_NUMBER", "MAX_ORDER_BYTES", "Address", "CancelReason", "Cancellation", "Comment",
    "InvalidOrder", "Narration", "NewLine", "NewOrder", "Order", "OrderEdit", "OrderRuleViolation", "Problem", "Refund",
    "TimelineDetail", "TimelineEntry", "add_comment", "cancel", "check_new_order", "complete_post_purchase",
    "display_fulfillment_status", "earliest_fulfill_by", "edit", "humanised", "is_draft", "narrate", "number", "pay",
    "place", "record_fulfillment_order", "record_on_timeline", "set_custom_status", "set_waiting", "shipped_quantities",
    "snapshot", "snapshot_digest", "timeline", "timeline_entry", "warehouse_status",
]  # fmt: skip
