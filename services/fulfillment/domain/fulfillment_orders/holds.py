"""Holds: stopping a fulfillment order from being fulfilled, and releasing it (Shopify's
"Holding fulfillment orders").

The merchant places a hold with a reason and a note and releases it (one reason, or all of
them); with no hold left the fulfillment order opens again (or is scheduled, or in progress, as
its lines say) and, when automatic, ships at once. Two kinds of hold are the platform's: the
out-of-stock hold (no location had the stock; it re-routes when stock arrives, see lifecycle) and
the post-purchase hold (released when the buyer finishes the offer or, by the sweep, when it ends).
"""

from __future__ import annotations

from dataclasses import replace

from shared.catalog import WITH_SERVICE, Hold, HoldReason
from shared.clock import parse

from .announcements import fo_event
from .lifecycle import with_progress
from .model import (
    SYSTEM_HOLDS,
    TERMINAL,
    FulfillmentOrder,
    InvalidRequest,
    Status,
    Transition,
    TransitionRefused,
)


def place_hold(fo: FulfillmentOrder, reason: HoldReason, note: str, now: str) -> Transition:
    """Stop the whole fulfillment order from being fulfilled until the hold is released."""
    if reason in SYSTEM_HOLDS:
        raise InvalidRequest(
            "reason",
            f"{reason} holds are placed by the platform when an order is paid with a post-purchase offer pending",
        )
    if fo.status not in (Status.OPEN, Status.IN_PROGRESS, Status.ON_HOLD, Status.INCOMPLETE):
        raise TransitionRefused(f"a fulfillment order that is {fo.status} cannot be put on hold")
    if fo.request_status in WITH_SERVICE:
        raise TransitionRefused(
            f"the fulfillment request is {fo.request_status} at {fo.fulfillment_service}: it cannot be put on hold here"
        )
    if any(hold.reason == reason for hold in fo.holds):
        raise TransitionRefused(f"the fulfillment order is already on hold for {reason}")
    fo = replace(
        fo, holds=(*fo.holds, Hold(reason=reason, note=note, held_at=now)), status=Status.ON_HOLD, updated_at=now
    )
    why = f"{reason.value}: {note}" if note else reason.value
    return Transition(fo, (fo_event("fulfillment_order.placed_on_hold", fo, why),))


def release_hold(fo: FulfillmentOrder, now: str, reason: HoldReason | None = None) -> Transition:
    """Release the merchant's holds (all, or the one with `reason`); with none left it opens again."""
    if fo.status != Status.ON_HOLD:
        raise TransitionRefused(f"the fulfillment order is {fo.status}, not on hold")
    held_for = ", ".join(hold.reason for hold in fo.holds)
    if reason is not None and all(hold.reason != reason for hold in fo.holds):
        raise TransitionRefused(f"the fulfillment order is not on hold for {reason} (held for {held_for})")
    releasable = [hold for hold in fo.holds if _merchant_releasable(fo, hold) and reason in (None, hold.reason)]
    if not releasable:
        raise TransitionRefused(
            f"the fulfillment order is held for {held_for}, which the platform releases: "
            "out-of-stock holds re-route when stock arrives, post-purchase holds when the buyer "
            "finishes the offer or the hold expires"
        )
    kept = tuple(hold for hold in fo.holds if hold not in releasable)
    return _released(fo, kept, ", ".join(f"{hold.reason} hold released" for hold in releasable), now)


def release_post_purchase_hold(fo: FulfillmentOrder, now: str, *, expired_only: bool) -> Transition | None:
    """The buyer finished the post-purchase offer, or (`expired_only`, the sweep) the hold ran out."""
    upsell = [hold for hold in fo.holds if hold.reason == HoldReason.POST_PURCHASE_UPSELL]
    if not upsell or fo.status in TERMINAL:
        return None
    if expired_only and any(parse(hold.release_at) > parse(now) for hold in upsell if hold.release_at):
        return None
    kept = tuple(hold for hold in fo.holds if hold.reason != HoldReason.POST_PURCHASE_UPSELL)
    why = "the post-purchase hold expired" if expired_only else "the buyer finished the post-purchase offer"
    return _released(fo, kept, why, now)


def _released(fo: FulfillmentOrder, kept: tuple[Hold, ...], why: str, now: str) -> Transition:
    fo = replace(fo, holds=kept, updated_at=now)
    if not kept and fo.status == Status.ON_HOLD:
        fo = replace(fo, status=fo.working_status(now))
    return with_progress(fo, (fo_event("fulfillment_order.hold_released", fo, why),), now)


def _merchant_releasable(fo: FulfillmentOrder, hold: Hold) -> bool:
    if hold.reason in SYSTEM_HOLDS:
        return False
    return not (hold.reason == HoldReason.INVENTORY_OUT_OF_STOCK and fo.location_id is None)
