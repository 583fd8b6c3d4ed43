"""The order's display fulfillment status, derived from its fulfillment orders (Shopify's names)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.orders.domain import display_fulfillment_status, earliest_fulfill_by
from shared.catalog import (
    DisplayFulfillmentStatus,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    HoldReason,
    RequestStatus,
)

S = DisplayFulfillmentStatus
FO = FulfillmentOrderStatus
_ids = iter(range(1_000_000))


def fo(
    status: FulfillmentOrderStatus = FO.OPEN,
    lines: list[tuple[int, int]] | None = None,
    holds: list[HoldReason] | None = None,
    request_status: RequestStatus = RequestStatus.UNSUBMITTED,
    fulfill_by: str | None = None,
) -> FulfillmentOrderSnapshot:
    """A fulfillment order whose lines are (quantity, fulfilled_quantity)."""
    number = next(_ids)
    line_items: list[dict[str, Any]] = [
        {"line_item_id": f"line-{number}-{i}", "sku": "SKU", "quantity": q, "fulfilled_quantity": f}
        for i, (q, f) in enumerate(lines or [(1, 0)])
    ]
    return FulfillmentOrderSnapshot.model_validate(
        {
            "id": f"fo-{number}",
            "order_id": "order-1",
            "location_id": "loc-1",
            "status": status,
            "request_status": request_status,
            "fulfill_by": fulfill_by,
            "holds": [{"reason": reason} for reason in holds or []],
            "line_items": line_items,
            "created_at": "2025-01-01T00:00:00+00:00",
            "updated_at": "2025-01-01T00:00:00+00:00",
        }
    )


def test_no_fulfillment_orders_yet_is_unfulfilled() -> None:
    assert display_fulfillment_status([]) == S.UNFULFILLED


def test_open_fulfillment_order_is_unfulfilled() -> None:
    assert display_fulfillment_status([fo(FO.OPEN)]) == S.UNFULFILLED


def test_every_line_fulfilled_is_fulfilled() -> None:
    assert display_fulfillment_status([fo(FO.CLOSED, [(2, 2), (1, 1)]), fo(FO.CLOSED, [(3, 3)])]) == S.FULFILLED


def test_some_lines_fulfilled_is_partially_fulfilled() -> None:
    assert display_fulfillment_status([fo(FO.CLOSED, [(1, 1)]), fo(FO.OPEN, [(1, 0)])]) == S.PARTIALLY_FULFILLED
    assert display_fulfillment_status([fo(FO.IN_PROGRESS, [(3, 1)])]) == S.PARTIALLY_FULFILLED


def test_everything_unfulfilled_on_hold_is_on_hold() -> None:
    held = [fo(FO.ON_HOLD, holds=[HoldReason.HIGH_RISK_OF_FRAUD]), fo(FO.ON_HOLD, holds=[HoldReason.INCORRECT_ADDRESS])]
    assert display_fulfillment_status(held) == S.ON_HOLD


def test_an_unfulfilled_item_not_on_hold_shows_unfulfilled_not_on_hold() -> None:
    status = display_fulfillment_status([fo(FO.ON_HOLD, holds=[HoldReason.INVENTORY_OUT_OF_STOCK]), fo(FO.OPEN)])
    assert status == S.UNFULFILLED


def test_rest_of_a_partly_fulfilled_order_on_hold_is_on_hold() -> None:
    status = display_fulfillment_status([fo(FO.CLOSED, [(1, 1)]), fo(FO.ON_HOLD, holds=[HoldReason.OTHER])])
    assert status == S.ON_HOLD


def test_held_only_for_the_post_purchase_upsell_is_pending() -> None:
    upsell = [HoldReason.POST_PURCHASE_UPSELL]
    assert display_fulfillment_status([fo(FO.ON_HOLD, holds=upsell), fo(FO.ON_HOLD, holds=upsell)]) == S.PENDING


def test_upsell_hold_with_another_hold_is_on_hold() -> None:
    holds = [HoldReason.POST_PURCHASE_UPSELL, HoldReason.HIGH_RISK_OF_FRAUD]
    assert display_fulfillment_status([fo(FO.ON_HOLD, holds=holds)]) == S.ON_HOLD
    mixed = [fo(FO.ON_HOLD, holds=[HoldReason.POST_PURCHASE_UPSELL]), fo(FO.ON_HOLD, holds=[HoldReason.OTHER])]
    assert display_fulfillment_status(mixed) == S.ON_HOLD


def test_request_rejected_by_a_fulfillment_service_is_request_declined() -> None:
    rejected = fo(FO.OPEN, request_status=RequestStatus.REJECTED)
    assert display_fulfillment_status([rejected, fo(FO.OPEN)]) == S.REQUEST_DECLINED
    assert display_fulfillment_status([rejected, fo(FO.CLOSED, [(1, 1)])]) == S.REQUEST_DECLINED


def test_a_rejected_request_whose_items_got_fulfilled_anyway_no_longer_shows_declined() -> None:
    assert display_fulfillment_status([fo(FO.CLOSED, [(1, 1)], request_status=RequestStatus.REJECTED)]) == S.FULFILLED


def test_everything_with_a_fulfillment_service_or_in_progress_is_in_progress() -> None:
    submitted = fo(FO.OPEN, request_status=RequestStatus.SUBMITTED)
    accepted = fo(FO.IN_PROGRESS, request_status=RequestStatus.ACCEPTED)
    assert display_fulfillment_status([submitted, accepted]) == S.IN_PROGRESS
    assert display_fulfillment_status([fo(FO.IN_PROGRESS)]) == S.IN_PROGRESS


def test_in_progress_needs_every_unfulfilled_item_in_progress() -> None:
    assert display_fulfillment_status([fo(FO.IN_PROGRESS), fo(FO.OPEN)]) == S.UNFULFILLED


def test_everything_unfulfilled_scheduled_is_scheduled() -> None:
    assert display_fulfillment_status([fo(FO.SCHEDULED), fo(FO.SCHEDULED)]) == S.SCHEDULED
    assert display_fulfillment_status([fo(FO.SCHEDULED), fo(FO.OPEN)]) == S.UNFULFILLED


def test_cancelled_fulfillment_orders_do_not_count() -> None:
    assert display_fulfillment_status([fo(FO.CANCELLED), fo(FO.CLOSED, [(1, 1)])]) == S.FULFILLED
    assert display_fulfillment_status([fo(FO.CANCELLED, [(1, 0)])]) == S.UNFULFILLED


def test_earliest_deadline_of_the_open_fulfillment_orders() -> None:
    fos = [
        fo(FO.OPEN, fulfill_by="2025-03-02T12:00:00+00:00"),
        fo(FO.ON_HOLD, fulfill_by="2025-03-01T12:00:00+01:00"),
        fo(FO.CLOSED, fulfill_by="2025-01-01T00:00:00+00:00"),
        fo(FO.CANCELLED, fulfill_by="2025-01-01T00:00:00+00:00"),
        fo(FO.OPEN),
    ]
    assert earliest_fulfill_by(fos) == "2025-03-01T11:00:00.000000+00:00"


def test_no_deadline_without_open_fulfillment_orders() -> None:
    assert earliest_fulfill_by([]) is None
    assert earliest_fulfill_by([fo(FO.CLOSED, fulfill_by="2025-01-01T00:00:00Z"), fo(FO.OPEN)]) is None


# --- properties -------------------------------------------------------------------------------

lines = st.lists(st.integers(1, 5).flatmap(lambda q: st.tuples(st.just(q), st.integers(0, q))), min_size=1, max_size=3)
fulfillment_orders = st.builds(
    fo,
    status=st.sampled_from(list(FO)),
    lines=lines,
    holds=st.lists(st.sampled_from(list(HoldReason)), max_size=2),
    request_status=st.sampled_from(list(RequestStatus)),
)


def _live(fos: list[FulfillmentOrderSnapshot]) -> list[FulfillmentOrderSnapshot]:
    return [f for f in fos if f.status != FO.CANCELLED]


@given(st.lists(fulfillment_orders, max_size=5))
def test_fulfilled_iff_every_live_line_is_fully_fulfilled(fos: list[FulfillmentOrderSnapshot]) -> None:
    live_lines = [line for f in _live(fos) for line in f.line_items]
    everything_fulfilled = bool(live_lines) and all(line.fulfilled_quantity >= line.quantity for line in live_lines)
    assert (display_fulfillment_status(fos) == S.FULFILLED) == everything_fulfilled


@given(st.lists(fulfillment_orders, max_size=5))
def test_on_hold_or_pending_only_when_every_unfulfilled_item_is_held(fos: list[FulfillmentOrderSnapshot]) -> None:
    if display_fulfillment_status(fos) in (S.ON_HOLD, S.PENDING):
        unfulfilled = [f for f in _live(fos) if any(line.fulfilled_quantity < line.quantity for line in f.line_items)]
        assert unfulfilled and all(f.status == FO.ON_HOLD for f in unfulfilled)


@given(st.lists(fulfillment_orders, max_size=5), st.lists(fulfillment_orders, max_size=2), st.randoms())
def test_cancelled_ones_and_their_order_do_not_matter(
    fos: list[FulfillmentOrderSnapshot], extra: list[FulfillmentOrderSnapshot], random: Any
) -> None:
    cancelled = [f.model_copy(update={"status": FO.CANCELLED}) for f in extra]
    shuffled = [*fos, *cancelled]
    random.shuffle(shuffled)
    assert display_fulfillment_status(shuffled) == display_fulfillment_status(fos)


@given(st.lists(fulfillment_orders, max_size=5))
def test_nothing_fulfilled_never_shows_partially_fulfilled(fos: list[FulfillmentOrderSnapshot]) -> None:
    if not any(line.fulfilled_quantity for f in _live(fos) for line in f.line_items):
        assert display_fulfillment_status(fos) not in (S.PARTIALLY_FULFILLED, S.FULFILLED)
