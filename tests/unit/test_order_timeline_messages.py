"""The timeline says what happened (issue 11): every entry carries, besides its type and time, a
one-line message in the merchant's words and the details that matter, one test per kind of entry."""

from __future__ import annotations

from typing import Any

import pytest

from services.orders import domain, store
from services.orders.api import order_view
from services.orders.domain import CancelReason, Order, Refund, TimelineEntry
from shared.catalog import (
    FulfillmentChanged,
    FulfillmentOrderChanged,
    FulfillmentRequestChanged,
    InventoryReservation,
    InventoryReservationFailed,
    NotificationOutcome,
    OrderFulfillmentStatusChanged,
)
from shared.events import CloudEvent, acting_as, new_event
from tests.unit.test_order_rules import LATER, NOW, placed

ORDER = placed(financial_status="paid")


def fo_snapshot(order: Order = ORDER, **changes: Any) -> dict[str, Any]:
    fo: dict[str, Any] = {
        "id": "fo-1", "order_id": order.id, "location_id": "loc-1", "status": "OPEN",
        "line_items": [{"line_item_id": line.id, "sku": line.sku, "quantity": line.quantity}
                       for line in order.line_items],
        "created_at": NOW, "updated_at": LATER,
    }  # fmt: skip
    return {**fo, **changes}


def entry_for(event: CloudEvent, order: Order = ORDER) -> TimelineEntry:
    """The entry the event leaves on the order's timeline, through the rule its handler calls."""
    data = event.payload()
    incoming = getattr(data, "fulfillment_order", None)
    if incoming is not None:
        after = domain.record_fulfillment_order(order, event, incoming, LATER, data).document
    else:
        after = domain.record_on_timeline(order, event, LATER, data).document
    return next(entry for entry in after.timeline if entry.event_id == event.id)


def fo_event(event_type: str, reason: str = "", **changes: Any) -> CloudEvent:
    data = FulfillmentOrderChanged.model_validate({"fulfillment_order": fo_snapshot(**changes), "reason": reason})
    return new_event("fulfillment", event_type, ORDER.id, data)


def request_event(event_type: str, message: str = "", reason: str | None = None, **changes: Any) -> CloudEvent:
    data = FulfillmentRequestChanged.model_validate(
        {"fulfillment_order": fo_snapshot(**changes), "order": domain.snapshot(ORDER),
         "fulfillment_service": "acme-3pl", "message": message, "reason": reason}
    )  # fmt: skip
    return new_event("fulfillment", event_type, ORDER.id, data)


def shipment_event(event_type: str = "fulfillment.created", **fulfillment: Any) -> CloudEvent:
    line = ORDER.line_items[0]
    shipped: dict[str, Any] = {
        "id": "ff-1", "order_id": ORDER.id, "fulfillment_order_id": "fo-1", "location_id": "loc-1",
        "status": "SUCCESS", "created_at": LATER, "updated_at": LATER,
        "line_items": [{"line_item_id": line.id, "sku": line.sku, "quantity": line.quantity}],
    }  # fmt: skip
    data = FulfillmentChanged.model_validate(
        {"fulfillment": {**shipped, **fulfillment}, "fulfillment_order": fo_snapshot(status="CLOSED"),
         "order": domain.snapshot(ORDER)}
    )  # fmt: skip
    return new_event("fulfillment", event_type, ORDER.id, data)


# --- holds ------------------------------------------------------------------------------------


def test_a_hold_says_its_reason_and_the_merchants_note_and_who_placed_it() -> None:
    with acting_as("merchant-alice"):
        hold = {"reason": "HIGH_RISK_OF_FRAUD", "note": "check the card"}
        event = fo_event("fulfillment_order.placed_on_hold", "HIGH_RISK_OF_FRAUD: check the card",
                         status="ON_HOLD", holds=[hold])  # fmt: skip
    entry = entry_for(event)
    assert entry.message == "Placed on hold: high risk of fraud — 'check the card'"
    assert entry.details["hold_reason"] == "HIGH_RISK_OF_FRAUD" and entry.details["hold_note"] == "check the card"
    assert entry.details["fulfillment_order_id"] == "fo-1" and entry.details["location_id"] == "loc-1"
    assert entry.actor == "merchant-alice" and entry.type == "fulfillment_order.placed_on_hold"


def test_a_second_hold_is_told_not_the_first() -> None:
    holds = [{"reason": "INCORRECT_ADDRESS", "note": ""}, {"reason": "OTHER", "note": "gift: ship on the 24th"}]
    entry = entry_for(fo_event("fulfillment_order.placed_on_hold", status="ON_HOLD", holds=holds))
    assert entry.message == "Placed on hold: other — 'gift: ship on the 24th'"
    assert "hold_note" in entry.details and entry.details["hold_reason"] == "OTHER"


def test_a_released_hold_names_what_was_released_and_what_still_holds() -> None:
    released = entry_for(fo_event("fulfillment_order.hold_released", "HIGH_RISK_OF_FRAUD hold released",
                                  status="ON_HOLD", holds=[{"reason": "INCORRECT_ADDRESS"}]))  # fmt: skip
    assert released.message == "Hold released: high risk of fraud"
    assert released.details["released_holds"] == ["HIGH_RISK_OF_FRAUD"]
    assert released.details["holds_kept"] == ["INCORRECT_ADDRESS"]
    by_the_platform = entry_for(fo_event("fulfillment_order.hold_released", "the post-purchase hold expired"))
    assert by_the_platform.message == "Hold released: the post-purchase hold expired"


# --- fulfillment services -----------------------------------------------------------------------


def test_a_rejection_says_the_service_its_reason_and_its_message() -> None:
    entry = entry_for(request_event("fulfillment_request.rejected", "we ran out", "INVENTORY_OUT_OF_STOCK",
                                    request_status="REJECTED"))  # fmt: skip
    assert entry.message == "Fulfillment request rejected by acme-3pl: out of stock — 'we ran out'"
    assert entry.details["rejection_reason"] == "INVENTORY_OUT_OF_STOCK"
    assert entry.details["service_message"] == "we ran out"
    assert entry.details["fulfillment_service"] == "acme-3pl" and entry.details["request_status"] == "REJECTED"


def test_the_merchants_note_travels_with_a_request_and_the_service_answers_in_its_words() -> None:
    submitted = entry_for(request_event("fulfillment_request.submitted", "gift wrap, please",
                                        request_status="SUBMITTED"))  # fmt: skip
    assert submitted.message == "Fulfillment requested from acme-3pl — 'gift wrap, please'"
    assert submitted.details["merchant_note"] == "gift wrap, please" and "service_message" not in submitted.details
    accepted = entry_for(request_event("fulfillment_request.accepted", "ships tomorrow", request_status="ACCEPTED"))
    assert accepted.message == "Fulfillment request accepted by acme-3pl — 'ships tomorrow'"
    assert accepted.details["service_message"] == "ships tomorrow" and "merchant_note" not in accepted.details
    silent = entry_for(request_event("fulfillment_request.accepted", request_status="ACCEPTED"))
    assert silent.message == "Fulfillment request accepted by acme-3pl"


@pytest.mark.parametrize(
    ("event_type", "message", "said"),
    [
        ("cancellation_request.submitted", "customer changed their mind",
         "Cancellation requested from acme-3pl — 'customer changed their mind'"),
        ("cancellation_request.accepted", "stopped it", "Cancellation request accepted by acme-3pl — 'stopped it'"),
        ("cancellation_request.rejected", "already on the truck",
         "Cancellation request rejected by acme-3pl — 'already on the truck'"),
    ],
)  # fmt: skip
def test_a_cancellation_request_and_its_answers_are_in_their_authors_words(
    event_type: str, message: str, said: str
) -> None:
    assert entry_for(request_event(event_type, message)).message == said


def test_a_fulfillment_order_the_service_cannot_complete_quotes_it() -> None:
    entry = entry_for(fo_event("fulfillment_order.incomplete", "acme-3pl cannot complete it: flood in the warehouse",
                               status="INCOMPLETE"))  # fmt: skip
    assert entry.message == "Fulfillment order incomplete: acme-3pl cannot complete it: flood in the warehouse"
    assert entry.details["reason"] == "acme-3pl cannot complete it: flood in the warehouse"
    assert entry.details["status"] == "INCOMPLETE"


def test_a_message_is_one_line_and_a_long_one_is_clipped_while_its_detail_keeps_it_whole() -> None:
    long = "line one\nline two\t" + "x" * 500
    entry = entry_for(request_event("fulfillment_request.rejected", long, "OTHER"))
    assert "\n" not in entry.message and "\t" not in entry.message
    assert entry.message.startswith("Fulfillment request rejected by acme-3pl: other — 'line one line two xxx")
    assert entry.message.endswith("…'") and len(entry.message) < 300
    assert entry.details["service_message"] == long


# --- shipments ------------------------------------------------------------------------------------


def test_a_shipment_says_what_left_from_where_with_which_tracking_numbers() -> None:
    tracking = {"numbers": ["1Z999AA10123456784", "1Z999AA10123456785"], "company": "UPS",
                "urls": ["https://www.ups.com/track?tracknum=1Z999AA10123456784"]}  # fmt: skip
    entry = entry_for(shipment_event(tracking=tracking, notify_customer=True))
    assert entry.message == (
        "2 items fulfilled from loc-1, tracking UPS 1Z999AA10123456784, 1Z999AA10123456785 (customer notified)"
    )
    assert entry.details["tracking_numbers"] == ["1Z999AA10123456784", "1Z999AA10123456785"]
    assert entry.details["tracking_company"] == "UPS" and entry.details["notify_customer"] is True
    assert entry.details["tracking_urls"] == ["https://www.ups.com/track?tracknum=1Z999AA10123456784"]
    assert entry.details["fulfillment_id"] == "ff-1" and entry.details["items"] == ["MUG-1 x 2"]


def test_a_shipment_without_tracking_names_no_number() -> None:
    entry = entry_for(shipment_event())
    assert entry.message == "2 items fulfilled from loc-1"
    assert "tracking_numbers" not in entry.details and entry.details["notify_customer"] is False


def test_new_tracking_a_cancelled_shipment_and_a_voided_label() -> None:
    tracking = {"numbers": ["9400111899223100000000"], "company": "USPS"}
    updated = entry_for(shipment_event("fulfillment.tracking_updated", tracking=tracking, notify_customer=True))
    assert updated.message == "Tracking updated: USPS 9400111899223100000000 (customer notified)"
    assert updated.details["tracking_numbers"] == ["9400111899223100000000"]
    cancelled = entry_for(shipment_event("fulfillment.cancelled", status="CANCELLED"))
    assert cancelled.message == "Fulfillment cancelled: 2 items back to unfulfilled"
    voided = entry_for(shipment_event("fulfillment.label_voided", label_status="VOIDED"))
    assert voided.message == "Shipping label voided" and voided.details["label_status"] == "VOIDED"


# --- the fulfillment order's life -----------------------------------------------------------------


def test_a_fulfillment_order_created_moved_cancelled_and_closed() -> None:
    created = entry_for(fo_event("fulfillment_order.created", "highest-priority location that has every line"))
    assert created.message == "Fulfillment order created at loc-1: highest-priority location that has every line"
    out_of_stock = entry_for(fo_event("fulfillment_order.created", location_id=None, status="ON_HOLD",
                                      holds=[{"reason": "INVENTORY_OUT_OF_STOCK"}]))  # fmt: skip
    assert out_of_stock.message == "Fulfillment order created without a location (on hold: out of stock)"
    data = FulfillmentOrderChanged.model_validate(
        {"fulfillment_order": fo_snapshot(location_id="loc-2"), "previous_location_id": "loc-1",
         "reason": "moved by the merchant from loc-1 to loc-2"}
    )  # fmt: skip
    moved = entry_for(new_event("fulfillment", "fulfillment_order.moved", ORDER.id, data))
    assert moved.message == "Fulfillment order moved from loc-1 to loc-2"
    assert moved.details["previous_location_id"] == "loc-1" and moved.details["location_id"] == "loc-2"
    cancelled = entry_for(fo_event("fulfillment_order.cancelled", "the order was cancelled", status="CANCELLED"))
    assert cancelled.message == "Fulfillment order cancelled: the order was cancelled"
    closed = entry_for(fo_event("fulfillment_order.closed", "every line is fulfilled", status="CLOSED"))
    assert closed.message == "Fulfillment order closed: every line is fulfilled"
    deadline = entry_for(fo_event("fulfillment_order.fulfill_by_changed", "fulfill by 2025-05-03",
                                  fulfill_by="2025-05-03T00:00:00Z"))  # fmt: skip
    assert deadline.message == "Fulfill-by deadline changed: fulfill by 2025-05-03"
    assert str(deadline.details["fulfill_by"]).startswith("2025-05-03")


# --- stock and emails -------------------------------------------------------------------------------


def test_stock_reserved_and_stock_that_could_not_be_reserved() -> None:
    lines = [{"sku": "MUG-1", "quantity": 2}]
    reserved = InventoryReservation.model_validate(
        {"order_id": ORDER.id, "fulfillment_order_id": "fo-1", "location_id": "loc-1", "lines": lines}
    )
    entry = entry_for(new_event("inventory", "inventory.reserved", ORDER.id, reserved))
    assert entry.message == "Stock reserved at loc-1: MUG-1 x 2" and entry.details["items"] == ["MUG-1 x 2"]
    short = InventoryReservationFailed.model_validate(
        {"order_id": ORDER.id, "fulfillment_order_id": "fo-1", "location_id": "loc-1", "lines": lines,
         "shortages": [{"sku": "MUG-1", "requested": 2, "available": 1}]}
    )  # fmt: skip
    failed = entry_for(new_event("inventory", "inventory.reservation_failed", ORDER.id, short))
    assert failed.message == "Stock could not be reserved at loc-1: MUG-1 (2 asked, 1 available)"


def test_an_email_sent_or_failed_says_which_and_why_without_the_address() -> None:
    record = {"id": "n-1", "order_id": ORDER.id, "type": "shipping_confirmation", "to": "buyer@example.com",
              "subject": "Your order is on its way", "status": "sent"}  # fmt: skip
    sent = NotificationOutcome.model_validate({"notification": record})
    entry = entry_for(new_event("notifications", "notification.sent", ORDER.id, sent))
    assert entry.message == "Shipping confirmation email sent to the customer"
    assert entry.details["subject"] == "Your order is on its way" and "buyer@example.com" not in str(entry)
    refused = NotificationOutcome.model_validate(
        {"notification": {**record, "status": "failed", "error": "550 mailbox unavailable"}}
    )
    failed = entry_for(new_event("notifications", "notification.failed", ORDER.id, refused))
    assert failed.message == "Shipping confirmation email to the customer failed: 550 mailbox unavailable"


# --- the order's own events ------------------------------------------------------------------------


def test_placing_and_paying_are_told() -> None:
    messages = [entry.message for entry in placed(financial_status="paid").timeline]
    assert messages == ["Order placed (paid)", "Order marked as paid"]
    assert [entry.message for entry in placed().timeline] == ["Order placed (pending)"]


@pytest.mark.parametrize(
    ("paid", "refund", "money"),
    [
        (False, Refund.NOW, "nothing was charged, so nothing is refunded"),
        (False, Refund.LATER, "nothing was charged, so nothing is refunded"),
        (True, Refund.NOW, "199.00 SEK refunded"),
        (True, Refund.LATER, "199.00 SEK to be refunded later"),
        (True, Refund.NONE, "not refunded"),
    ],
)
def test_a_cancellation_says_what_happened_to_the_money_not_what_was_asked(
    paid: bool, refund: Refund, money: str
) -> None:
    order = placed(financial_status="paid" if paid else "pending")
    cancelled = domain.cancel(order, refund=refund, restock=True, notify_customer=False, reason=CancelReason.FRAUD,
                              now=LATER).document  # fmt: skip
    entry = cancelled.timeline[-1]
    assert entry.message == f"Order cancelled (reason: fraud): {money}; items restocked; customer not notified"
    assert entry.details["refund"] == refund.value and entry.details["restock"] is True


def test_a_status_change_says_the_new_status() -> None:
    data = OrderFulfillmentStatusChanged.model_validate({"order_id": ORDER.id, "fulfillment_status": "ON_HOLD"})
    entry = domain.timeline_entry(new_event("orders", "order.fulfillment_status_changed", ORDER.id, data), LATER)
    assert entry.message == "Fulfillment status is now on hold" and entry.details == {"fulfillment_status": "ON_HOLD"}


# --- the bulk job that did it --------------------------------------------------------------------


def test_the_bulk_job_that_did_it_is_named_when_the_event_says_so() -> None:
    data = FulfillmentOrderChanged.model_validate(
        {"fulfillment_order": fo_snapshot(status="ON_HOLD", holds=[{"reason": "OTHER", "note": "stocktake"}]),
         "bulk_job_id": "job-7"}
    )  # fmt: skip
    with acting_as("merchant-bob"):
        event = new_event("fulfillment", "fulfillment_order.placed_on_hold", ORDER.id, data)
    entry = entry_for(event)
    assert entry.details["bulk_job_id"] == "job-7" and entry.actor == "merchant-bob"
    cancelled = domain.cancel(ORDER, refund=Refund.NOW, restock=True, notify_customer=False,
                              reason=CancelReason.CUSTOMER, now=LATER, bulk_job_id="job-8")  # fmt: skip
    assert cancelled.events[0].data["bulk_job_id"] == "job-8"
    assert cancelled.document.timeline[-1].details["bulk_job_id"] == "job-8"
    assert "bulk_job_id" not in entry_for(fo_event("fulfillment_order.opened")).details


# --- events it has no words for, and entries stored before messages -----------------------------------


def test_an_event_without_words_reads_as_its_type() -> None:
    unreadable = CloudEvent(source="inventory", type="inventory.reserved", subject=ORDER.id, data={})
    assert domain.timeline_entry(unreadable, LATER).message == "Inventory reserved"
    assert domain.humanised("fulfillment_request.withdrawn") == "Fulfillment request withdrawn"


def test_an_entry_stored_before_messages_loads_and_shows_its_type_in_words() -> None:
    document = store.MAPPING.dump(ORDER)
    document["timeline"] = [{"at": NOW, "type": "fulfillment_order.placed_on_hold", "source": "fulfillment",
                             "event_id": "e-1"}]  # fmt: skip
    loaded = store.MAPPING.load(document)
    assert loaded.timeline[0].message == "" and loaded.timeline[0].details == {}
    [shown] = order_view(loaded).model_dump(mode="json")["timeline"]
    assert shown["message"] == "Fulfillment order placed on hold" and shown["details"] == {}


def test_a_withdrawn_request_and_a_legacy_services_progress_are_told_in_their_authors_words() -> None:
    withdrawn = entry_for(request_event("fulfillment_request.withdrawn", "customer left", request_status="UNSUBMITTED"))
    assert withdrawn.message == "Fulfillment request withdrawn from acme-3pl — 'customer left'"
    assert withdrawn.details["merchant_note"] == "customer left"
    progress = entry_for(request_event("fulfillment_request.progress_reported", "picked, packing now",
                                       request_status="ACCEPTED"))  # fmt: skip
    assert progress.message == "Progress reported by acme-3pl — 'picked, packing now'"
    assert progress.details["service_message"] == "picked, packing now"


def test_a_reset_to_unfulfilled_warns_that_the_service_may_still_ship() -> None:
    """The issue: reset to unfulfilled, "the timeline warns that the service may still ship"."""
    data = FulfillmentOrderChanged.model_validate(
        {"fulfillment_order": fo_snapshot(), "reason": "the service went quiet",
         "warning": "acme-3pl was asked to cancel and never answered: it may still ship"}
    )  # fmt: skip
    entry = entry_for(new_event("fulfillment", "fulfillment_order.reset_to_unfulfilled", ORDER.id, data))
    assert entry.message.startswith("Reset to unfulfilled: the lines are back with the merchant. Warning: ")
    assert "may still ship" in entry.message
    assert entry.details["warning"] == "acme-3pl was asked to cancel and never answered: it may still ship"
