"""Pick lists and packing slips (services/fulfillment/domain/pick_lists.py, printing/): "a pick
list grouped by sku in bin order (a bin per sku and location in inventory), with quantities and the
order numbers each unit goes to; a packing slip per order. Printable HTML and PDF ... each
fulfillment order records when its pick list was printed, and the list shows which were printed
before." Also a bin is set on a stock without moving a unit, and announced with its level."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal

import pytest
from pypdf import PdfReader

from services.fulfillment.api.pick_lists import wanted_format
from services.fulfillment.domain.fulfillment_orders.model import (
    FulfillmentOrder,
    Kind,
    Line,
    Reservation,
    Status,
    TransitionRefused,
)
from services.fulfillment.domain.pick_lists import (
    bin_order,
    in_packing,
    order_reference,
    packing_slip,
    pick_list,
    record_pick_list_printed,
    why_not_pickable,
)
from services.fulfillment.printing import html, pdf
from services.inventory.domain import stock
from services.inventory.domain.stock import StockLevel
from shared.catalog import Address, Customer, FinancialStatus, LineItem, OrderSnapshot

NOW = "2026-03-02T08:15:00.000000+00:00"
EARLIER = "2026-03-01T16:40:00.000000+00:00"


def order(order_id: str, number: int | None, *lines: tuple[str, str, int]) -> OrderSnapshot:
    return OrderSnapshot(
        id=order_id, customer=Customer(email="ada@example.com", name=f"Buyer <{order_id}>"),
        shipping_address=Address(name="Ada Lund", address1="Storgatan 1", city="Malmö", zip="21122",
                                 country_code="SE"),
        currency="SEK", financial_status=FinancialStatus.PAID, created_at=EARLIER, number=number,
        line_items=[LineItem(id=f"{order_id}-{sku}", sku=sku, title=title, quantity=qty, unit_price=Decimal("10"))
                    for sku, title, qty in lines],
    )  # fmt: skip


def fo(
    fo_id: str, snapshot: OrderSnapshot, status: Status = Status.IN_PROGRESS, location: str = "wh", **kw: object
) -> FulfillmentOrder:
    lines = tuple(Line(item.id, item.sku, item.quantity) for item in snapshot.line_items)
    base = FulfillmentOrder(
        id=fo_id, order_id=snapshot.id, kind=Kind.SHIPPING, location_id=location, location_name="Main",
        status=status, line_items=lines, reservation_status=Reservation.RESERVED, order=snapshot,
        created_at=EARLIER, updated_at=EARLIER,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


BINS = {"MUG-1": "A-10", "TEA": "A-2", "CUP": "b-1"}


def test_lines_are_grouped_by_sku_in_bin_order_with_the_orders_each_unit_goes_to() -> None:
    one = fo("fo-1", order("o-1", 1001, ("MUG-1", "Mug", 2), ("TEA", "Tea", 1)))
    two = fo("fo-2", order("o-2", 1002, ("MUG-1", "Mug", 1), ("NOBIN", "Spoon", 4), ("CUP", "Cup", 1)))
    made = pick_list("wh", "Main", [one, two], BINS, NOW)

    assert [(line.bin, line.sku, line.quantity) for line in made.lines] == [
        ("A-2", "TEA", 1),
        ("A-10", "MUG-1", 3),
        ("b-1", "CUP", 1),
        (None, "NOBIN", 4),
    ]  # fmt: skip  (A-2 before A-10: natural order; no bin last)
    mug = made.lines[1]
    assert mug.title == "Mug"
    assert [(d.order_ref, d.quantity) for d in mug.destinations] == [("#1001", 2), ("#1002", 1)]
    assert made.units == 9
    assert [(p.order_ref, p.units) for p in made.fulfillment_orders] == [("#1001", 3), ("#1002", 6)]


def test_only_what_remains_to_ship_is_picked_and_two_lines_of_one_sku_go_as_one_destination() -> None:
    snapshot = order("o-3", 1003, ("MUG-1", "Mug", 3))
    snapshot = snapshot.model_copy(update={"line_items": [
        *snapshot.line_items,
        LineItem(id="o-3-gift", sku="MUG-1", title="Mug (gift)", quantity=2, unit_price=Decimal("0")),
    ]})  # fmt: skip
    partly = fo("fo-3", snapshot, line_items=(Line("o-3-MUG-1", "MUG-1", 3, 1), Line("o-3-gift", "MUG-1", 2)))
    (line,) = pick_list("wh", "Main", [partly], BINS, NOW).lines
    assert (line.quantity, [(d.order_ref, d.quantity) for d in line.destinations]) == (4, [("#1003", 4)])


def test_an_order_without_a_number_is_referred_to_by_its_short_id() -> None:
    assert order_reference(order("2d613a51-0000-4000-8000-000000000000", None)) == "#2D613A51"
    assert order_reference(order("x", 1001)) == "#1001"


def test_bins_walk_in_natural_order_case_aside_and_unbinned_last() -> None:
    codes = ["A-10", None, "a-2", "B-1", "A-2-3", "A-03"]
    assert sorted(codes, key=bin_order) == ["a-2", "A-2-3", "A-03", "A-10", "B-1", None]


def test_packing_means_in_progress_at_a_location_the_merchant_runs() -> None:
    snapshot = order("o-4", 1004, ("TEA", "Tea", 1))
    assert in_packing(fo("fo-4", snapshot))
    assert not in_packing(fo("fo-4", snapshot, Status.OPEN))
    assert not in_packing(fo("fo-4", snapshot, fulfillment_service="acme-3pl"))
    assert not in_packing(fo("fo-4", snapshot, line_items=(Line("o-4-TEA", "TEA", 1, 1),)))


def test_a_chosen_fulfillment_order_must_be_open_or_in_progress_at_the_location() -> None:
    snapshot = order("o-5", 1005, ("TEA", "Tea", 1))
    assert why_not_pickable(fo("fo-5", snapshot, Status.OPEN), "wh") is None
    assert "ships from other, not wh" in str(why_not_pickable(fo("fo-5", snapshot, location="other"), "wh"))
    assert "is ON_HOLD" in str(why_not_pickable(fo("fo-5", snapshot, Status.ON_HOLD), "wh"))


def test_printing_records_when_and_the_next_list_shows_it_was_printed_before() -> None:
    first = fo("fo-6", order("o-6", 1006, ("TEA", "Tea", 1)))
    assert pick_list("wh", "Main", [first], BINS, NOW).fulfillment_orders[0].printed_before is None
    printed = record_pick_list_printed(first, NOW)
    assert printed.events == [] and printed.fo.pick_list_printed_at == NOW
    again = pick_list("wh", "Main", [printed.fo], BINS, NOW)
    assert again.fulfillment_orders[0].printed_before == NOW
    assert "printed before: 2026-03-02 08:15 UTC" in html(again)


def test_the_packing_slip_has_what_remains_and_where_it_goes_and_nothing_to_pack_is_refused() -> None:
    snapshot = order("o-7", 1007, ("MUG-1", "Mug", 2), ("TEA", "Tea", 1))
    slip = packing_slip(fo("fo-7", snapshot, line_items=(Line("o-7-MUG-1", "MUG-1", 2, 1), Line("o-7-TEA", "TEA", 1))),
                        BINS, NOW)  # fmt: skip
    assert [(line.sku, line.quantity, line.bin) for line in slip.lines] == [("MUG-1", 1, "A-10"), ("TEA", 1, "A-2")]
    assert (slip.order_ref, slip.ship_to) == ("#1007", ("Ada Lund", "Storgatan 1", "21122 Malmö", "SE"))
    for refused in (fo("fo-7", snapshot, Status.CLOSED), fo("fo-7", snapshot, kind=Kind.DIGITAL, location_id=None)):
        with pytest.raises(TransitionRefused):
            packing_slip(refused, BINS, NOW)


def test_html_escapes_the_data_and_the_pdf_holds_the_same_text() -> None:
    made = pick_list("wh", "Main", [fo("fo-8", order("o-8", 1008, ("TEA", "Tea <b>strong</b>", 2)))], BINS, NOW)
    page = html(made)
    assert "Tea &lt;b&gt;strong&lt;/b&gt;" in page and "<b>strong" not in page
    assert "Buyer &lt;o-8&gt;" in page
    document = pdf(made)
    assert document.startswith(b"%PDF")
    text = " ".join(PdfReader(io.BytesIO(document)).pages[0].extract_text().split())
    for expected in ("Pick list: Main", "A-2 TEA Tea <b>strong</b> 2 #1008 × 2", "Buyer <o-8>", "first print"):
        assert expected in text, text
    assert pdf(made) == document  # the same list prints to the same bytes


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("", "html"), ("*/*", "html"), ("application/pdf", "pdf"), ("text/html, application/pdf;q=0.9", "html"),
     ("application/json", "json"), ("application/pdf, application/json", "pdf")],
)  # fmt: skip
def test_the_accept_header_chooses_the_format(accept: str, expected: str) -> None:
    assert wanted_format(accept) == expected


def test_a_bin_is_set_without_moving_a_unit_and_travels_with_the_level() -> None:
    level = StockLevel("wh", "MUG-1", on_hand=5, reserved=2)
    effect = stock.set_bin(level, "A-10")
    assert (effect.moved, effect.level.on_hand, effect.level.reserved) == (0, 5, 2)
    assert effect.level.snapshot().bin == "A-10"
    assert stock.set_bin(effect.level, None).level.bin is None
    assert stock.set_bin(effect.level, "A-10").level == effect.level  # the same bin again: nothing to write
