"""The fields fulfillment's queries use, kept by the rules (issue 15: every query in an indexed
shape): one sortable listing key, epoch times for the sweep's ranges, a fulfillment id that
names its fulfillment order, the plan's check time, and the listing's cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.fulfillment import listing
from services.fulfillment.domain import order_routing
from services.fulfillment.domain.order_routing import RoutingRecord
from services.fulfillment.store import FULFILLMENT_ORDERS, ROUTING_RECORDS
from shared.aggregates import Change, Document
from shared.catalog import HoldReason
from shared.clock import iso as normalise_time
from tests import fulfillment_documents as fo_rules
from tests.unit.test_fulfillment_order import LATER, T0, T1, apply, created, open_fo, order

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).map(
    normalise_time
)
listed = st.tuples(st.one_of(st.none(), moments), moments, st.uuids().map(str))
Listed = tuple[str | None, str, str]  # fulfill_by, created_at, id


@given(st.lists(listed, min_size=2, max_size=30))
def test_the_listing_key_sorts_as_deadline_then_creation_then_id(
    fulfillment_orders: list[tuple[str | None, str, str]],
) -> None:
    def old_order(fo: tuple[str | None, str, str]) -> tuple[str, str, str]:
        return (fo[0] or fo_rules.NO_DEADLINE, fo[1], fo[2])

    def key(fo: Listed) -> str:
        return fo_rules.sort_key(fo[0] or fo_rules.NO_DEADLINE, fo[1], fo[2])

    assert sorted(fulfillment_orders, key=key) == sorted(fulfillment_orders, key=old_order)


def test_the_listing_key_does_not_start_like_a_date() -> None:
    """The embedded store takes a filter value that starts like a date for a date, and scans."""
    fo = open_fo()
    assert fo["sort_key"] == f"k{fo_rules.NO_DEADLINE}|{fo['created_at']}|{fo['id']}"
    assert not fo["sort_key"][0].isdigit()
    deadline = apply(fo_rules.set_fulfill_by(fo, LATER, T1))
    assert deadline["sort_key"] < fo["sort_key"], "a deadline sorts before none"


def test_the_sweep_s_times_are_epoch_seconds_set_only_while_due_to_happen() -> None:
    fo = open_fo()
    assert fo["opens_at_epoch"] is None and fo["upsell_release_epoch"] is None
    at = (datetime.fromisoformat(T1) + timedelta(days=1)).isoformat(timespec="microseconds")
    scheduled = apply(fo_rules.schedule(fo, at, T1))
    assert scheduled["opens_at_epoch"] == datetime.fromisoformat(at).timestamp()
    opened = apply(fo_rules.open_scheduled(scheduled, T1, due_only=False))
    assert opened["opens_at_epoch"] is None

    held = created(("MUG", 1, True), post_purchase_pending=True).document
    release_at = held["holds"][0]["release_at"]
    assert held["upsell_release_epoch"] == datetime.fromisoformat(release_at).timestamp()
    assert apply(fo_rules.cancel(held, "cancelled", T1))["upsell_release_epoch"] is None


def test_a_fulfillment_id_names_its_fulfillment_order() -> None:
    fo = open_fo()
    shipped = apply(fo_rules.fulfil(fo, fo_rules.FulfillmentRequest(lines=[fo_rules.LineQuantity("li-MUG", 1)]), T1))
    again = apply(fo_rules.fulfil(shipped, fo_rules.FulfillmentRequest(), T1))
    assert list(again["fulfillments"]) == [f"{fo['id']}_1", f"{fo['id']}_2"]
    assert {fo_rules.fulfillment_order_of(fid) for fid in again["fulfillments"]} == {fo["id"]}
    for older_or_foreign in ("2f1e5c3a-0000-5000-8000-000000000001", "_1", "fo_", "fo_x", ""):
        assert fo_rules.fulfillment_order_of(older_or_foreign) is None


def test_a_revised_plan_is_due_for_the_sweep_s_check_until_marked_materialised() -> None:
    context = order_routing.RoutingContext([], {})
    routing = planned(order_routing.route_paid_order(None, order(("MUG", 1, True)), context, T0))
    grace = order_routing.MATERIALISE_GRACE_SECONDS
    assert routing["materialise_check_at"] == datetime.fromisoformat(T0).timestamp() + grace
    done = planned(order_routing.materialised(ROUTING_RECORDS.load(routing), routing["revision"]))
    assert done["materialise_check_at"] is None
    cancelled = planned(order_routing.cancel(ROUTING_RECORDS.load(done), order(("MUG", 1, True)), T1))
    assert cancelled["materialise_check_at"] == datetime.fromisoformat(T1).timestamp() + grace


def planned(change: Change[RoutingRecord] | None) -> Document:
    """A plan as the store keeps it."""
    assert change is not None
    return ROUTING_RECORDS.dump(change.document)


def test_out_of_stock_holds_are_marked_for_their_skus() -> None:
    held = created(("MUG", 2, True), ("CUP", 1, True), location=None).document
    assert held["out_of_stock"] and held["skus"] == ["CUP", "MUG"]
    assert any(hold["reason"] == HoldReason.INVENTORY_OUT_OF_STOCK for hold in held["holds"])


@given(moments, st.uuids().map(str))
def test_a_cursor_gives_back_the_key_it_was_made_from(at: str, fo_id: str) -> None:
    key = fo_rules.sort_key(fo_rules.NO_DEADLINE, at, fo_id)
    cursor = listing.encode_cursor(key)
    assert cursor.isascii() and "=" not in cursor
    assert listing.decode_cursor(cursor) == key


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "a2FwdXR0", "%%%", "k", "//__"])
def test_a_cursor_the_listing_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(listing.BadCursor):
        listing.decode_cursor(cursor)


def test_filters_of_a_listing_by_order_are_applied_in_memory() -> None:
    fo = FULFILLMENT_ORDERS.load(open_fo())
    assert listing.Filters(order_id=fo.order_id, status="OPEN", location_id="wh-1").matches(fo)
    assert not listing.Filters(status="CLOSED").matches(fo)
    assert not listing.Filters(location_id="elsewhere").matches(fo)
    assert not listing.Filters(fulfillment_services=["shipco"]).matches(fo)
