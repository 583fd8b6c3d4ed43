"""Placing an order: the merchant-facing rules a well-formed order can still break, and the new
order with the events that announce it."""

from __future__ import annotations

import uuid
from dataclasses import replace

from services.orders.domain.model import NO_CUSTOMER, InvalidOrder, NewOrder, Order, Problem, snapshot
from shared.aggregates import Change
from shared.catalog import FinancialStatus, LineItem

# Active ISO 4217 currency codes (funds and test codes left out): a typo such as "SKR" for
# "SEK" is refused up front rather than discovered when the money moves.
CURRENCIES = frozenset(
    {
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
        "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
        "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
        "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
        "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
        "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
        "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
        "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC",
        "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
        "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
    }
)  # fmt: skip

# Every event about an order carries its snapshot, the largest ones (a fulfillment of every line)
# about twice over. Bounding the snapshot keeps each event well under what a real Kafka cluster
# takes by default (message.max.bytes, 1 MB): an order that could not be announced must be refused
# at the door, not stall the pipeline later.
MAX_ORDER_BYTES = 256_000

ADDRESS_PARTS = ("address1", "city", "country_code")
"""What a shipping address needs when a line ships."""


def check_new_order(request: NewOrder) -> list[Problem]:
    """The rules a well-formed order can still break, each named by its field.

    A digital line (downloads, gift cards) ships nothing and points at its asset; a line
    that ships needs somewhere to go; the currency is a real ISO 4217 code.
    """
    problems: list[Problem] = []
    if request.currency not in CURRENCIES:
        problems.append(Problem("currency", f"{request.currency!r} is not an ISO 4217 currency code"))
    for index, line in enumerate(request.line_items):
        field = f"line_items.{index}"
        digital = line.digital_asset_url is not None
        if digital and line.requires_shipping:
            reason = "a line with a digital_asset_url is digital and must have requires_shipping false"
            problems.append(Problem(f"{field}.requires_shipping", reason))
        if not digital and not line.requires_shipping:
            reason = "a line that requires no shipping is digital and needs a digital_asset_url"
            problems.append(Problem(f"{field}.digital_asset_url", reason))
    if any(line.requires_shipping for line in request.line_items):
        address = request.shipping_address
        if address is None:
            problems.append(Problem("shipping_address", "required when a line requires shipping"))
        else:
            for part in ADDRESS_PARTS:
                if not getattr(address, part):
                    problems.append(Problem(f"shipping_address.{part}", "required when a line requires shipping"))
    return problems


def place(request: NewOrder, now: str, order_id: str | None = None) -> Change[Order]:
    """A new order, not announced yet: it is announced when numbered (domain.warehouse.number),
    so that every event about it carries its number."""
    problems = check_new_order(request)
    if problems:
        raise InvalidOrder(problems)
    lines = tuple(LineItem(**line.model_dump(exclude={"id"}), id=str(uuid.uuid4())) for line in request.line_items)
    order = Order(
        id=order_id or str(uuid.uuid4()), customer=request.customer or NO_CUSTOMER,
        shipping_address=request.shipping_address, currency=request.currency, financial_status=request.financial_status,
        post_purchase_pending=request.post_purchase_pending,
        line_items=lines, created_at=now, updated_at=now,
    )  # fmt: skip
    size = len(snapshot(order).model_dump_json())
    if size > MAX_ORDER_BYTES:
        reason = (
            f"the order is {size} bytes as an event, over the limit of {MAX_ORDER_BYTES} bytes: "
            "use fewer lines or shorter texts and URLs"
        )
        raise InvalidOrder([Problem("line_items", reason)])
    if order.financial_status == FinancialStatus.PAID:
        order = replace(order, paid_at=now)
    return Change(order)
