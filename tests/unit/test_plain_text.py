"""Issue #8, "NUL and terminal control characters are stored and copied into emails": every
text field of every request body, and of every event, refuses C0 and C1 control characters
(shared/text.py); multi-line free text may hold line breaks and tabs, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.fulfillment.api import BulkJobIn, CancellationRequestIn, FulfillmentIn, HoldIn, SubmitIn
from services.inventory.api import AdjustmentIn, LocationIn
from services.orders.api import OrderIn
from shared.catalog import Customer, FulfillmentServiceResponse, NotificationRecord
from shared.events import EnvelopeError, parse_event
from shared.text import FROM_THE_STORE, control_character_problem, one_line

NUL, ESC, CSI, BEL, DEL, LF = "\x00", "\x1b", "\x9b", "\x07", "\x7f", "\n"


def order(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"},
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "country_code": "SE"},
        "currency": "SEK",
        "line_items": [{"sku": "MUG-1", "title": "Mug", "quantity": 2, "unit_price": "99.50"}],
    }
    body.update(changes)
    return body


def refused(model: type[BaseModel], body: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate_json(json.dumps(body))
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in raised.value.errors()]


@pytest.mark.parametrize("char", [NUL, ESC, CSI, BEL, DEL, LF, "\r", "\t", "\x85"])
def test_single_line_text_refuses_every_control_character(char: str) -> None:
    problem = control_character_problem(f"Ada{char}Buyer")
    assert problem is not None and f"U+{ord(char):04X}" in problem and "position 3" in problem
    assert control_character_problem("Åsa Öberg — 用户 ✓") is None  # any script, any symbol: fine


def test_multi_line_text_allows_line_breaks_and_tabs_only() -> None:
    assert control_character_problem("line one\r\nline two\tend", multi_line=True) is None
    assert control_character_problem(f"line one\n{ESC}[2J", multi_line=True) is not None
    assert control_character_problem(f"x{NUL}", multi_line=True) is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order(customer={"email": "buyer@example.com", "name": f"Ada{NUL}Buyer"}), "customer.name"),
        (order(customer={"email": "buyer@example.com", "name": f"Ada{ESC}[31mBuyer"}), "customer.name"),
        (order(shipping_address={"address1": f"Storgatan 1{LF}Bcc: x", "city": "S", "country_code": "SE"}),
         "shipping_address.address1"),
        (order(shipping_address={"address1": "S 1", "city": f"Sthlm{CSI}2J", "country_code": "SE"}),
         "shipping_address.city"),
        (order(line_items=[{"sku": "MUG-1", "title": f"Mug{BEL}", "quantity": 1, "unit_price": "1"}]),
         "line_items.0.title"),
        (order(line_items=[{"sku": f"MUG{NUL}", "title": "Mug", "quantity": 1, "unit_price": "1"}]),
         "line_items.0.sku"),
    ],
)  # fmt: skip
def test_orders_refuses_control_characters_naming_the_field(body: dict[str, Any], field: str) -> None:
    [(name, _)] = refused(OrderIn, body)
    assert name == field


def test_inventory_and_fulfillment_bodies_refuse_control_characters_naming_the_field() -> None:
    assert refused(LocationIn, {"name": f"Stockholm{NUL}"})[0][0] == "name"
    assert refused(AdjustmentIn, {"delta": 1, "reason": f"received{ESC}[2J"})[0][0] == "reason"
    assert refused(HoldIn, {"reason": "OTHER", "note": f"call{LF}the buyer"})[0][0] == "note"
    [(field, reason)] = refused(FulfillmentIn, {"tracking": {"numbers": ["1Z1", f"1Z2{NUL}"], "company": "UPS"}})
    assert field == "tracking.numbers" and reason.startswith("item 1 contains a control character (U+0000 NUL)")
    assert refused(FulfillmentIn, {"tracking": {"company": f"UPS{DEL}"}})[0][0] == "tracking.company"
    body = {"action": "hold", "fulfillment_order_ids": ["fo-1"], "reason": "OTHER", "note": f"x{ESC}"}
    assert refused(BulkJobIn, body)[0][0] == "note"


def test_a_message_to_a_fulfillment_service_may_have_several_lines_but_no_other_controls() -> None:
    assert SubmitIn.model_validate({"message": "Gift wrap please.\nLeave at the door."}).message.count("\n") == 1
    assert CancellationRequestIn.model_validate({"message": "a\r\nb\tc"}).message == "a\r\nb\tc"
    [(field, reason)] = refused(SubmitIn, {"message": f"hi{NUL}"})
    assert field == "message" and "only line breaks and tabs are allowed" in reason


def test_event_text_with_control_characters_is_refused() -> None:
    with pytest.raises(ValidationError, match="customer.name|name"):
        Customer(email="a@example.com", name=f"Ada{NUL}")
    assert FulfillmentServiceResponse(fulfillment_order_id="fo", fulfillment_service="s", message="a\nb").message
    with pytest.raises(ValidationError):
        FulfillmentServiceResponse(fulfillment_order_id="fo", fulfillment_service="s", message=f"a{ESC}")
    record: dict[str, Any] = {
        "id": "n",
        "order_id": "o",
        "type": "t",
        "to": "a@example.com",
        "subject": "s",
        "status": "failed",
    }
    assert NotificationRecord(**record, error="451 try\nlater").error  # an SMTP reply may span lines


def test_a_forged_event_with_a_nul_in_the_buyers_name_says_which_field() -> None:
    order_data = {"id": "o-1", "customer": {"email": "a@example.com", "name": f"Ada{NUL}"}, "currency": "SEK",
                  "financial_status": "paid", "line_items": [], "created_at": "2030-01-01T00:00:00Z"}  # fmt: skip
    raw = json.dumps({"specversion": "1.0", "id": "e-1", "source": "forger", "type": "order.paid",
                      "subject": "o-1", "data": {"order": order_data}})  # fmt: skip
    with pytest.raises(EnvelopeError, match=r"order\.customer\.name: contains a control character \(U\+0000 NUL\)"):
        parse_event(raw)


def test_text_kept_from_outside_is_made_one_plain_line() -> None:
    assert one_line(f"550 no\r\n such {ESC}[2J user{NUL}") == "550 no such [2J user"


def test_text_read_back_from_the_store_is_not_checked_twice_but_text_coming_in_always_is() -> None:
    """Loading an aggregate (every event that touches it does) skips the check its text passed
    when it came in; the same data from anywhere else is still refused."""
    stored = {"email": "buyer@example.com", "name": f"Ada{ESC}Buyer"}
    assert Customer.model_validate(stored, context=FROM_THE_STORE).name == f"Ada{ESC}Buyer"
    with pytest.raises(ValidationError):
        Customer.model_validate(stored)
    with pytest.raises(ValidationError):
        Customer.model_validate(stored, context={"something": "else"})
