"""Issue 12, "Business metrics: orders paid and cancelled, ..., holds by reason, routing splits,
reservations failed, emails sent and failed by type; the default process and Python metrics
restored": counted from the events a service publishes, in the service that owns them."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import JsonValue

from services.fulfillment.domain.routing import LineNeed, RoutingLocation, route
from shared.business_metrics import BusinessMetrics, routing_of
from shared.catalog import (
    FulfillmentOrderChanged,
    FulfillmentOrderSnapshot,
    InventoryReservationFailed,
    NotificationOutcome,
    OrderCancelled,
)
from shared.events import CloudEvent, new_event

NOW = "2026-05-01T09:30:00.000000+00:00"
ORDER: dict[str, JsonValue] = {
    "id": "o1", "customer": {"email": "a@example.com", "name": "A"}, "currency": "SEK", "financial_status": "paid",
    "line_items": [{"id": "l1", "sku": "MUG", "title": "Mug", "quantity": 1, "unit_price": "5"}], "created_at": NOW,
}  # fmt: skip


def fulfillment_order(**fields: Any) -> dict[str, Any]:
    return {
        "id": "fo1", "order_id": "o1", "location_id": "wh1", "status": "OPEN", "created_at": NOW, "updated_at": NOW,
        "line_items": [{"line_item_id": "l1", "sku": "MUG", "quantity": 1}], **fields,
    }  # fmt: skip


def fo_event(event_type: str, **fields: Any) -> CloudEvent:
    data = FulfillmentOrderChanged.model_validate({"fulfillment_order": fulfillment_order(**fields)})
    return new_event("fulfillment", event_type, "o1", data)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def split_reason() -> str:
    """The reason the real routing gives a split (so a change of its wording fails here)."""
    locations = [RoutingLocation("wh1", "North", 1), RoutingLocation("wh2", "South", 2)]
    plan = route([LineNeed("l1", "MUG", 2)], locations, {("wh1", "MUG"): 1, ("wh2", "MUG"): 1})
    assert plan.split
    return plan.allocations[0].reason


def test_orders_paid_cancelled_and_fulfilled_are_counted_by_the_orders_service() -> None:
    registry = CollectorRegistry()
    metrics = BusinessMetrics(registry, "orders")
    metrics.observe(CloudEvent(source="orders", type="order.paid", subject="o1", data={"order": ORDER}))
    cancelled = OrderCancelled.model_validate(
        {"order": ORDER, "refund": "now", "refunded": True, "restock": True, "notify_customer": False, "reason": "x"}
    )
    metrics.observe(new_event("orders", "order.cancelled", "o1", cancelled))
    for status in ("PARTIALLY_FULFILLED", "FULFILLED"):
        data: dict[str, JsonValue] = {"order_id": "o1", "fulfillment_status": status}
        metrics.observe(CloudEvent(source="orders", type="order.fulfillment_status_changed", subject="o1", data=data))
    assert value(registry, "orders_paid_total") == 1
    assert value(registry, "orders_cancelled_total", refund="now") == 1
    assert value(registry, "orders_fulfilled_total") == 1


def test_routing_splits_and_holds_by_reason_are_counted_from_created_fulfillment_orders() -> None:
    registry = CollectorRegistry()
    metrics = BusinessMetrics(registry, "fulfillment")
    reason = split_reason()
    for fo_id, location in (("fo1", "wh1"), ("fo2", "wh2")):  # one order split over two locations
        metrics.observe(fo_event("fulfillment_order.created", id=fo_id, location_id=location, routing_reason=reason))
    out_of_stock = [{"reason": "INVENTORY_OUT_OF_STOCK", "note": ""}]
    metrics.observe(fo_event("fulfillment_order.created", location_id=None, status="ON_HOLD", holds=out_of_stock))
    fraud = [{"reason": "HIGH_RISK_OF_FRAUD", "note": "card"}]
    metrics.observe(fo_event("fulfillment_order.placed_on_hold", status="ON_HOLD", holds=fraud))
    assert value(registry, "fulfillment_orders_routed_total", routing="split") == 2
    assert value(registry, "fulfillment_orders_routed_total", routing="out_of_stock") == 1
    assert value(registry, "order_routing_splits_total") == 1, "two fulfillment orders, one order split"
    assert value(registry, "fulfillment_holds_placed_total", reason="INVENTORY_OUT_OF_STOCK") == 1
    assert value(registry, "fulfillment_holds_placed_total", reason="HIGH_RISK_OF_FRAUD") == 1


def test_routing_kinds_follow_the_routing_reasons() -> None:
    locations = [RoutingLocation("wh1", "North", 1)]
    single = route([LineNeed("l1", "MUG", 1)], locations, {("wh1", "MUG"): 1}).allocations[0].reason
    partial_plan = route([LineNeed("l1", "MUG", 1), LineNeed("l2", "CUP", 1)], locations, {("wh1", "MUG"): 1})

    def snapshot(**fields: Any) -> FulfillmentOrderSnapshot:
        return FulfillmentOrderSnapshot.model_validate(fulfillment_order(**fields))

    assert routing_of(snapshot(routing_reason=single)) == "single"
    assert routing_of(snapshot(routing_reason=partial_plan.allocations[0].reason)) == "partial"
    assert routing_of(snapshot(location_id=None)) == "digital"


def test_reservations_failed_and_emails_by_type_are_counted() -> None:
    registry = CollectorRegistry()
    inventory = BusinessMetrics(registry, "inventory")
    failed = InventoryReservationFailed.model_validate(
        {"order_id": "o1", "fulfillment_order_id": "fo1", "location_id": "wh1", "lines": [], "shortages": []}
    )
    inventory.observe(new_event("inventory", "inventory.reservation_failed", "o1", failed))
    assert value(registry, "inventory_reservations_total", outcome="failed") == 1

    registry = CollectorRegistry()
    notifications = BusinessMetrics(registry, "notifications")
    for status, event_type in (("sent", "notification.sent"), ("failed", "notification.failed")):
        record = {"id": "n1", "order_id": "o1", "type": "shipping_confirmation", "to": "a@example.com",
                  "subject": "Shipped", "status": status}  # fmt: skip
        outcome = NotificationOutcome.model_validate({"notification": record})
        notifications.observe(new_event("notifications", event_type, "o1", outcome))
    assert value(registry, "emails_total", type="shipping_confirmation", outcome="sent") == 1
    assert value(registry, "emails_total", type="shipping_confirmation", outcome="failed") == 1


def test_a_service_exports_only_the_counters_of_its_own_events() -> None:
    """A sum over every pod of the platform is then the platform's figure, not four times zero."""
    registry = CollectorRegistry()
    BusinessMetrics(registry, "inventory")
    names = {metric.name for metric in registry.collect()}
    assert "inventory_reservations" in names
    assert not names & {"orders_paid", "emails", "fulfillment_holds_placed"}


def test_the_default_process_and_python_metrics_are_restored() -> None:
    registry = CollectorRegistry()
    BusinessMetrics(registry, "orders")
    names = {metric.name for metric in registry.collect()}
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "python_info", "python_gc_collections"} <= names


def test_an_event_the_counters_cannot_read_does_not_stop_the_relay() -> None:
    registry = CollectorRegistry()
    metrics = BusinessMetrics(registry, "fulfillment")
    odd = CloudEvent(
        source="fulfillment", type="fulfillment_order.created", subject="o1", data={"fulfillment_order": 7}
    )
    metrics.observe(odd)  # logged, not raised
