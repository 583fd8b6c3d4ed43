"""Editing an order while it is a draft, placed or being packed: quantities, lines added or
removed, the shipping address, the customer. The order changes here and says so (`order.edited`,
with the whole new order and the changes in words); fulfillment re-routes and re-reserves what
changed.

A draft becomes an order when it is given its customer (the warehouse packs it from then on); an
order never goes back to being a draft. Nothing that has shipped is touched: a line with units
shipped cannot be changed or removed, and the address cannot change once anything shipped (it
went to the old one)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.orders.domain.model import InvalidOrder, NewLine, NewOrder, Order, OrderRuleViolation, Problem, snapshot
from services.orders.domain.placing import MAX_ORDER_BYTES, check_new_order
from services.orders.domain.timeline import emit
from services.orders.domain.warehouse import goods_status, shipped_quantities, warehouse_status
from shared.aggregates import Change
from shared.catalog import Address, Customer, LineItem, OrderEdited, WarehouseStatus

EDITABLE = frozenset({WarehouseStatus.ORDER, WarehouseStatus.PACKING})
"""Where an order's goods may stand for it to be edited, a draft's too."""


@dataclass(frozen=True)
class OrderEdit:
    """What the merchant sends: the full new lines (None: unchanged; a line with the `id` of an
    existing line, or else its sku, is that line; other lines are new), the new address and/or
    the customer (None: unchanged)."""

    line_items: Sequence[NewLine] | None = None
    shipping_address: Address | None = None
    address_given: bool = False
    customer: Customer | None = None


def edit(order: Order, change: OrderEdit, now: str) -> Change[Order] | None:
    """The order as edited, with `order.edited`; None when the edit changes nothing."""
    if order.cancelled_at:
        raise OrderRuleViolation("the order is cancelled and cannot be edited")
    status = goods_status(order)
    if status not in EDITABLE:
        raise OrderRuleViolation(
            f"the order is {status.value}: only a draft or an order placed or in packing can be edited"
        )
    shipped = shipped_quantities(order)
    words: list[str] = []
    lines = order.line_items
    if change.line_items is not None:
        lines = _edited_lines(order.line_items, change.line_items, shipped, words)
    address = order.shipping_address
    if change.address_given and change.shipping_address != order.shipping_address:
        if any(shipped.values()):
            raise OrderRuleViolation("part of the order has shipped to the current address: it cannot change")
        address = change.shipping_address
        words.append("shipping address changed")
    customer = order.customer
    if change.customer is not None and change.customer != order.customer:
        customer = change.customer
        was_draft = warehouse_status(order) == WarehouseStatus.DRAFT
        words.append("customer added: no longer a draft" if was_draft else "customer changed")
    if not words:
        return None
    _check(order, lines, address, customer)
    edited = replace(order, line_items=lines, shipping_address=address, customer=customer, updated_at=now)
    return emit(edited, [("order.edited", OrderEdited(order=snapshot(edited), changes=words))], now)


def _edited_lines(
    current: Sequence[LineItem], wanted: Sequence[NewLine], shipped: dict[str, int], words: list[str]
) -> tuple[LineItem, ...]:
    by_id = {line.id: line for line in current}
    matched: set[str] = set()
    problems: list[Problem] = []
    result: list[LineItem] = []
    for index, new in enumerate(wanted):
        old = _match(new, by_id, current, matched)
        if new.id and old is None:
            problems.append(Problem(f"line_items.{index}.id", f"the order has no line {new.id!r}"))
            continue
        if old is None:
            line = LineItem(**new.model_dump(exclude={"id"}), id=str(uuid.uuid4()))
            words.append(f"{line.sku} added (quantity {line.quantity})")
            result.append(line)
            continue
        matched.add(old.id)
        line = LineItem(**new.model_dump(exclude={"id"}), id=old.id)
        said = _differences(old, line)
        if said and shipped.get(old.id, 0) > 0:
            raise OrderRuleViolation(f"{old.sku} has shipped ({shipped[old.id]} of {old.quantity}): it cannot change")
        words.extend(said)
        result.append(line)
    if problems:
        raise InvalidOrder(problems)
    for old in current:
        if old.id not in matched:
            if shipped.get(old.id, 0) > 0:
                raise OrderRuleViolation(f"{old.sku} has shipped ({shipped[old.id]} of {old.quantity}): "
                                         "it cannot be removed")  # fmt: skip
            words.append(f"{old.sku} removed")
    return tuple(result)


def _match(new: NewLine, by_id: dict[str, LineItem], current: Sequence[LineItem], matched: set[str]) -> LineItem | None:
    """The existing line a wanted line is: by id when given, else the first unmatched one of its sku."""
    if new.id:
        found = by_id.get(new.id)
        return found if found is not None and found.id not in matched else None
    return next((line for line in current if line.sku == new.sku and line.id not in matched), None)


def _differences(old: LineItem, new: LineItem) -> list[str]:
    said = []
    if new.quantity != old.quantity:
        said.append(f"{old.sku} quantity {old.quantity} -> {new.quantity}")
    if new.unit_price != old.unit_price:
        said.append(f"{old.sku} price {old.unit_price} -> {new.unit_price}")
    if new.sku != old.sku or new.title != old.title:
        said.append(f"{old.sku} now {new.sku} ({new.title})")
    if new.requires_shipping != old.requires_shipping or new.digital_asset_url != old.digital_asset_url:
        said.append(f"{new.sku} delivery changed")
    return said


def _check(order: Order, lines: tuple[LineItem, ...], address: Address | None, customer: Customer) -> None:
    """The placing rules hold for the edited order too (digital lines, an address where a line
    ships), and it still fits in an event."""
    as_new = NewOrder(
        customer=customer, shipping_address=address, currency=order.currency,
        line_items=tuple(NewLine(**line.model_dump()) for line in lines),
    )  # fmt: skip
    problems = check_new_order(as_new)
    if not lines:
        problems.append(Problem("line_items", "an order keeps at least one line"))
    if problems:
        raise InvalidOrder(problems)
    edited = replace(order, line_items=lines, shipping_address=address, customer=customer)
    size = len(snapshot(edited).model_dump_json())
    if size > MAX_ORDER_BYTES:
        raise InvalidOrder([Problem("line_items", f"the order would be {size} bytes, over {MAX_ORDER_BYTES}")])
