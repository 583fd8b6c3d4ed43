"""The shapes the orders API accepts: what a merchant gets wrong is refused with the field named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from services.orders.api import CancelIn, OrderIn


def order_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"},
        "shipping_address": {"address1": "Storgatan 1", "city": "Stockholm", "country_code": "SE"},
        "currency": "SEK",
        "line_items": [{"sku": "MUG-1", "title": "Mug", "quantity": 2, "unit_price": "99.50"}],
    }
    body.update(changes)
    return body


def line(**changes: Any) -> dict[str, Any]:
    return {"sku": "MUG-1", "title": "Mug", "quantity": 1, "unit_price": "1.00", **changes}


def invalid_fields(body: Any, model: type[OrderIn] | type[CancelIn] = OrderIn) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate_json(json.dumps(body))
    return [".".join(str(p) for p in err["loc"]) for err in raised.value.errors()]


def test_a_good_order_keeps_the_price_as_written() -> None:
    order = OrderIn.model_validate_json(json.dumps(order_body()))
    assert order.model_dump(mode="json")["line_items"][0]["unit_price"] == "99.50"
    assert order.financial_status == "pending" and order.line_items[0].requires_shipping is True


@pytest.mark.parametrize(
    ("written", "stored"), [("1e3", "1000"), ("-0", "0"), ("12.3400000", "12.3400"), (5, "5"), (0.1, "0.1")]
)
def test_prices_are_plain_decimals(written: Any, stored: str) -> None:
    order = OrderIn.model_validate_json(json.dumps(order_body(line_items=[line(unit_price=written)])))
    assert order.model_dump(mode="json")["line_items"][0]["unit_price"] == stored


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        (line(quantity=0), "quantity"),
        (line(quantity=-1), "quantity"),
        (line(quantity="2"), "quantity"),
        (line(quantity=1.5), "quantity"),
        (line(quantity=True), "quantity"),
        (line(quantity=10**30), "quantity"),
        (line(unit_price="-0.01"), "unit_price"),
        (line(unit_price="NaN"), "unit_price"),
        (line(unit_price="abc"), "unit_price"),
        (line(unit_price="0.00001"), "unit_price"),
        (line(unit_price="1e12"), "unit_price"),
        (line(unit_price=True), "unit_price"),
        (line(sku=""), "sku"),
        (line(sku="S" * 65), "sku"),
        (line(title="T" * 256), "title"),
        (line(requires_shipping="yes"), "requires_shipping"),
        (line(digital_asset_url="not a url"), "digital_asset_url"),
        (line(digital_asset_url="ftp://files.example.com/x"), "digital_asset_url"),
        (line(colour="red"), "colour"),
    ],
)
def test_a_bad_line_names_its_field(bad_line: dict[str, Any], field: str) -> None:
    assert invalid_fields(order_body(line_items=[bad_line])) == [f"line_items.0.{field}"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"line_items": []}, "line_items"),
        ({"line_items": [line()] * 251}, "line_items"),
        ({"line_items": None}, "line_items"),
        ({"customer": {"email": "not-an-email", "name": "A"}}, "customer.email"),
        ({"customer": {"email": "a@" + "b" * 300 + ".com", "name": "A"}}, "customer.email"),
        ({"customer": {"email": "buyer@example.com", "name": ""}}, "customer.name"),
        ({"customer": {"email": "buyer@example.com", "name": "x" * 10_000}}, "customer.name"),
        ({"currency": "SEKK"}, "currency"),
        ({"currency": 752}, "currency"),
        ({"financial_status": "refunded"}, "financial_status"),
        ({"post_purchase_pending": "no"}, "post_purchase_pending"),
        (
            {"shipping_address": {"address1": "x", "city": "y", "country_code": "sweden"}},
            "shipping_address.country_code",
        ),
        ({"shipping_address": {"address1": "x" * 256, "city": "y", "country_code": "SE"}}, "shipping_address.address1"),
        ({"id": "chosen-by-client"}, "id"),
        ({"fulfillment_status": "FULFILLED"}, "fulfillment_status"),
    ],
)
def test_a_bad_order_names_its_field(changes: dict[str, Any], field: str) -> None:
    assert invalid_fields(order_body(**changes)) == [field]


def test_missing_fields_are_each_named() -> None:
    """The customer may be missing since issue 12: an order without one is a draft."""
    assert invalid_fields({}) == ["currency", "line_items"]


def test_cancel_needs_refund_restock_and_reason() -> None:
    good = CancelIn.model_validate({"refund": "now", "restock": True, "reason": "customer"})
    assert good.notify_customer is False
    assert invalid_fields({}, CancelIn) == ["refund", "restock", "reason"]
    bad = {"refund": "yesterday", "restock": "yes", "notify_customer": 1, "reason": "bored", "extra": 1}
    assert invalid_fields(bad, CancelIn) == ["refund", "restock", "notify_customer", "reason", "extra"]
