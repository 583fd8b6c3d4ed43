"""Issue 12's rules on the order, without I/O: numbering, waiting, comments, custom statuses, the
warehouse status, editing and what a search matches."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from services.orders import custom_statuses, domain, listing, search
from services.orders.domain import Comment, InvalidOrder, NewLine, Order, OrderEdit, OrderRuleViolation
from shared.catalog import Customer, FulfillmentOrderSnapshot, WarehouseStatus
from tests.event_data import data_of
from tests.unit.test_order_rules import LATER, NOW, order_request, placed


def with_fo(
    order: Order, status: str = "OPEN", shipped: dict[str, int] | None = None, service: str | None = None
) -> Order:
    lines = [{"line_item_id": line.id, "sku": line.sku, "quantity": line.quantity,
              "fulfilled_quantity": (shipped or {}).get(line.sku, 0)} for line in order.line_items]  # fmt: skip
    fo = FulfillmentOrderSnapshot.model_validate({
        "id": "fo-1", "order_id": order.id, "location_id": "wh-1", "status": status, "line_items": lines,
        "created_at": NOW, "updated_at": NOW, "fulfillment_service": service,
    })  # fmt: skip
    return replace(order, fulfillment_orders={"fo-1": fo})


def two_lines() -> Order:
    return placed(line_items=[
        {"sku": "MUG-1", "title": "Mug", "quantity": 1, "unit_price": "10"},
        {"sku": "TEA", "title": "Tea", "quantity": 2, "unit_price": "5"},
    ])  # fmt: skip


def line(sku: str, quantity: int, line_id: str = "") -> NewLine:
    title = {"MUG-1": "Mug", "TEA": "Tea"}.get(sku, sku.title())
    return NewLine(id=line_id, sku=sku, title=title, quantity=quantity, unit_price=Decimal(10 if sku == "MUG-1" else 5))


def test_numbering_announces_the_order_once_and_never_renumbers() -> None:
    order = domain.place(order_request(financial_status="paid"), NOW).document
    assert order.number is None and order.timeline == ()
    change = domain.number(order, 1001, NOW)
    assert change is not None and [e.type for e in change.events] == ["order.created", "order.paid"]
    assert all(data_of(e)["order"]["number"] == 1001 for e in change.events)
    assert domain.number(change.document, 1002, NOW) is None


def test_the_warehouse_status_follows_the_fulfillment_orders() -> None:
    order = two_lines()
    assert domain.warehouse_status(order) == WarehouseStatus.ORDER
    assert domain.warehouse_status(with_fo(order, "IN_PROGRESS")) == WarehouseStatus.PACKING
    assert domain.warehouse_status(with_fo(order, "IN_PROGRESS", service="shipco")) == WarehouseStatus.ORDER
    assert domain.warehouse_status(with_fo(order, "IN_PROGRESS", {"TEA": 2})) == WarehouseStatus.PACKING, "partial"
    assert domain.warehouse_status(with_fo(order, "CLOSED", {"TEA": 2, "MUG-1": 1})) == WarehouseStatus.SHIPPED
    draft = domain.place(order_request(customer=None), NOW).document
    assert domain.warehouse_status(draft) == WarehouseStatus.DRAFT


def test_waiting_is_announced_when_it_changes_only() -> None:
    change = domain.set_waiting(placed(), True, LATER)
    assert change is not None and [e.type for e in change.events] == ["order.waiting_changed"]
    assert data_of(change.events[0])["order"]["waiting"] is True
    assert domain.set_waiting(change.document, True, LATER) is None
    assert change.document.timeline[-1].message == "Marked waiting: kept out of the pack run"


def test_comments_are_kept_in_order_and_bounded() -> None:
    order = placed()
    for i in range(domain.warehouse.MAX_COMMENTS):
        order = domain.add_comment(order, Comment(id=str(i), text=f"note {i}", at=LATER)).document
    with pytest.raises(OrderRuleViolation):
        domain.add_comment(order, Comment(id="x", text="one too many", at=LATER))


def test_a_status_is_renamed_but_its_code_stays() -> None:
    defined = custom_statuses.define(None, "vip", "VIP")
    assert defined is not None
    renamed = custom_statuses.rename(defined.document, "vip", "vip", "Very important")
    assert renamed is not None and renamed.document.names == {"vip": "Very important"}
    with pytest.raises(custom_statuses.StatusRuleViolation):
        custom_statuses.define(renamed.document, "vip", "Other")
    with pytest.raises(custom_statuses.UnknownStatus):
        custom_statuses.rename(renamed.document, "nope", "nope", "x")


def test_an_edit_says_each_change_in_words() -> None:
    order = two_lines()
    mug = order.line_items[0]
    change = domain.edit(order, OrderEdit(line_items=[line("MUG-1", 3, mug.id), line("CUP", 2)]), LATER)
    assert change is not None
    [event] = change.events
    assert event.type == "order.edited"
    assert event.data["changes"] == ["MUG-1 quantity 1 -> 3", "CUP added (quantity 2)", "TEA removed"]
    assert [(li.sku, li.quantity) for li in change.document.line_items] == [("MUG-1", 3), ("CUP", 2)]
    assert change.document.line_items[0].id == mug.id
    assert domain.edit(order, OrderEdit(line_items=[line("MUG-1", 1), line("TEA", 2)]), LATER) is None


def test_an_edit_is_refused_once_what_it_touches_shipped() -> None:
    """Issue 12: "refused with 409 once anything of the order has shipped that the change would
    touch, or once it is shipped"."""
    order = with_fo(two_lines(), "IN_PROGRESS", {"TEA": 1})
    mug = order.line_items[0]
    with pytest.raises(OrderRuleViolation, match="TEA has shipped"):
        domain.edit(order, OrderEdit(line_items=[line("MUG-1", 1, mug.id)]), LATER)
    with pytest.raises(OrderRuleViolation, match="address"):
        domain.edit(order, OrderEdit(shipping_address=domain.Address(address1="x", city="y", country_code="SE"),
                                     address_given=True), LATER)  # fmt: skip
    untouched = domain.edit(order, OrderEdit(line_items=[line("MUG-1", 2, mug.id), line("TEA", 2)]), LATER)
    assert untouched is not None, "a line with nothing shipped still changes"
    shipped = with_fo(two_lines(), "CLOSED", {"TEA": 2, "MUG-1": 1})
    with pytest.raises(OrderRuleViolation, match="shipped"):
        domain.edit(shipped, OrderEdit(line_items=[line("MUG-1", 2)]), LATER)


def test_an_edit_keeps_the_placing_rules() -> None:
    with pytest.raises(InvalidOrder):
        domain.edit(two_lines(), OrderEdit(shipping_address=None, address_given=True), LATER)


def test_a_draft_given_its_customer_becomes_an_order() -> None:
    """Before: "the order is draft: only an order placed or in packing can be edited", so a draft
    never got its customer and the warehouse never packed it."""
    draft = domain.place(order_request(customer=None), NOW).document
    buyer = Customer(email="late@example.com", name="Late Buyer")
    change = domain.edit(draft, OrderEdit(customer=buyer), LATER)
    assert change is not None and change.document.customer == buyer
    assert domain.warehouse_status(change.document) == WarehouseStatus.ORDER
    [event] = change.events
    assert event.type == "order.edited" and event.data["changes"] == ["customer added: no longer a draft"]
    assert data_of(event)["order"]["customer"] == {"email": "late@example.com", "name": "Late Buyer"}
    assert {"late@example.com", "late", "buyer"} <= search.terms_of(change.document)
    assert domain.edit(change.document, OrderEdit(customer=buyer), LATER) is None, "the same customer: no change"


def test_a_shipped_draft_is_not_edited() -> None:
    """A merchant may ship a draft's fulfillment order by hand: once everything shipped, a draft
    is refused an edit like any shipped order (a review finding on letting drafts be edited)."""
    draft = domain.place(order_request(customer=None), NOW).document
    shipped = with_fo(draft, "CLOSED", {line.sku: line.quantity for line in draft.line_items})
    assert domain.warehouse_status(shipped) == WarehouseStatus.DRAFT
    as_they_are = [NewLine(**li.model_dump()) for li in shipped.line_items]
    with pytest.raises(OrderRuleViolation, match="the order is shipped"):
        domain.edit(shipped, OrderEdit(line_items=[*as_they_are, line("CUP", 3)]), LATER)


def test_a_drafts_lines_are_edited_and_an_orders_customer_changed() -> None:
    draft = domain.place(order_request(customer=None), NOW).document
    more = domain.edit(draft, OrderEdit(line_items=[line("MUG-1", 2)]), LATER)
    assert more is not None and domain.warehouse_status(more.document) == WarehouseStatus.DRAFT
    order = placed()
    changed = domain.edit(order, OrderEdit(customer=Customer(email="new@example.com", name="New")), LATER)
    assert changed is not None and changed.events[0].data["changes"] == ["customer changed"]


def test_a_search_matches_every_word_and_every_filter() -> None:
    order = replace(placed(customer={"email": "Greta@Example.com", "name": "Greta Garbo"}), number=1042)
    order = domain.add_comment(order, Comment(id="c", text="Fragile, wrap twice.", at=LATER)).document
    assert search.terms_of(order) >= {"1042", "greta@example.com", "greta", "garbo", "mug-1", "fragile", "twice"}
    assert listing.matches(order, listing.OrderFilters(q="#1042 garbo"))
    assert not listing.matches(order, listing.OrderFilters(q="garbo nothing"))
    assert listing.matches(order, listing.OrderFilters(total_min=Decimal("199"), total_max=Decimal("199")))
    assert not listing.matches(order, listing.OrderFilters(warehouse_status=WarehouseStatus.PACKING))


def test_a_search_plan_walks_one_index_and_says_when_it_is_not_exact() -> None:
    assert listing.plan(listing.OrderFilters(custom_status="vip"), "created_at", None).exact
    plan = listing.plan(listing.OrderFilters(q="garbo", custom_status="vip"), "-created_at", None)
    assert plan.term == "garbo" and not plan.exact
    with pytest.raises(listing.Unsupported):
        listing.plan(listing.OrderFilters(q="garbo"), "fulfill_by", None)
    ranged = listing.plan(listing.OrderFilters(created_from=NOW, created_to=LATER), "created_at", None)
    assert ranged.exact and set(ranged.bounds) == {"$gt", "$lt"}
