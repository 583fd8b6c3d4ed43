"""Inventory's rules, without I/O: stock per location, holds, commits, restock, locations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from services.inventory import domain
from services.inventory.domain import locations, requests, reservations
from services.inventory.domain import stock as stock_rules
from services.inventory.domain.locations import LocationDirectory
from services.inventory.domain.reservations import Movement, RecordedCommit, RecordedHold, ReservationRecord
from services.inventory.domain.stock import Commit, CommitState, Effect, StockLevel
from services.inventory.mapping import RECORDS
from shared.catalog import FulfillmentOrderSnapshot, Location, Shortage

NOW = "2026-01-01T00:00:00.000000+00:00"


def stock(on_hand: int = 10, **holds: int) -> StockLevel:
    level = StockLevel("wh-1", "MUG-1", on_hand=on_hand)
    for fo, quantity in holds.items():
        effect = stock_rules.reserve(level, fo, quantity)
        assert isinstance(effect, Effect)
        level = effect.level
    return level


def effect(result: Effect | Shortage) -> Effect:
    assert isinstance(result, Effect), result
    return result


# --- counting and adjusting ---------------------------------------------------------------


def test_set_on_hand_counts_the_stock() -> None:
    result = stock_rules.set_on_hand(stock(10, fo1=3), 7)
    assert (result.level.on_hand, result.level.reserved, result.level.available) == (7, 3, 4)
    assert result.moved == 3


def test_set_on_hand_below_reserved_is_refused_with_the_reason() -> None:
    with pytest.raises(domain.InventoryRuleViolation, match="below the 3 units reserved"):
        stock_rules.set_on_hand(stock(10, fo1=3), 2)


def test_adjust_receives_and_removes_units_but_not_reserved_ones() -> None:
    level = stock(10, fo1=4)
    assert stock_rules.adjust(level, 5).level.on_hand == 15
    assert stock_rules.adjust(level, -6).level.available == 0
    with pytest.raises(domain.InventoryRuleViolation, match=r"below the 4 units reserved .*available: 6"):
        stock_rules.adjust(level, -7)


# --- holds ---------------------------------------------------------------------------------


def test_reserve_holds_units_for_the_fulfillment_order() -> None:
    result = effect(stock_rules.reserve(stock(10), "fo1", 4))
    assert (result.level.reserved, result.level.available, dict(result.level.holds)) == (4, 6, {"fo1": 4})
    assert result.moved == 4


def test_reserve_more_than_available_names_the_shortage_and_changes_nothing() -> None:
    level = stock(5, fo1=3)
    assert stock_rules.reserve(level, "fo2", 3) == Shortage(sku="MUG-1", requested=3, available=2, seq=level.seq)


def test_reserving_twice_for_the_same_fulfillment_order_holds_once() -> None:
    once = effect(stock_rules.reserve(stock(10), "fo1", 4)).level
    twice = effect(stock_rules.reserve(once, "fo1", 4))
    assert twice.level == once and twice.moved == 0


def test_reserve_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError, match="positive"):
        stock_rules.reserve(stock(10), "fo1", 0)


def test_release_lets_go_of_the_hold_once() -> None:
    released = stock_rules.release(stock(10, fo1=4, fo2=1), "fo1")
    assert (released.level.reserved, dict(released.level.holds), released.moved) == (1, {"fo2": 1}, 4)
    again = stock_rules.release(released.level, "fo1")
    assert again.level == released.level and again.moved == 0


# --- commits -------------------------------------------------------------------------------
# What a fulfillment took is history, kept in its fulfillment order's record (`recorded`); the
# stock marks an effect until the record has it (`settle`).


def test_commit_takes_units_out_of_on_hand_and_the_hold() -> None:
    result = stock_rules.commit(stock(10, fo1=4), {}, "f1", "fo1", 4)
    level = result.level
    assert (level.on_hand, level.reserved, level.available, dict(level.holds)) == (6, 0, 6, {})
    commits = stock_rules.commits_at(level, "fo1", {})
    assert commits["f1"] == Commit("fo1", 4, CommitState.COMMITTED) and stock_rules.committed(commits) == 4


def test_partial_fulfillment_keeps_the_rest_held() -> None:
    level = stock_rules.commit(stock(10, fo1=4), {}, "f1", "fo1", 1).level
    assert (level.on_hand, level.reserved, dict(level.holds)) == (9, 3, {"fo1": 3})


def test_the_same_fulfillment_commits_once() -> None:
    once = stock_rules.commit(stock(10, fo1=4), {}, "f1", "fo1", 2).level
    again = stock_rules.commit(once, {}, "f1", "fo1", 2)
    assert again.level == once and again.moved == 0


def test_the_same_fulfillment_commits_once_after_the_stock_forgot_it() -> None:
    """Once the record has the commit, the stock forgets its mark: the record alone says it is done."""
    once = stock_rules.commit(stock(10, fo1=4), {}, "f1", "fo1", 2).level
    forgotten, recorded = stock_rules.settle(once, "fo1", {})
    assert forgotten.marks == {} and recorded == {"f1": Commit("fo1", 2)}
    again = stock_rules.commit(forgotten, recorded, "f1", "fo1", 2)
    assert again.level == forgotten and again.moved == 0


def test_a_stock_forgets_what_was_sold_once_recorded() -> None:
    """Issue 15: "every fulfilment adds an entry to the stock document ... forever": a stock holds
    only what is live, however many fulfillments it has had."""
    level = stock(10_000)
    recorded: dict[str, Commit] = {}
    for n in range(500):
        level = stock_rules.commit(level, recorded, f"f{n}", f"fo{n}", 1).level
        level, recorded_now = stock_rules.settle(level, f"fo{n}", {})
        recorded = {**recorded, **recorded_now}
    assert (level.on_hand, dict(level.holds), dict(level.marks)) == (9_500, {}, {})


def test_commit_beyond_the_hold_takes_from_available_never_below_zero() -> None:
    level = stock(5, fo1=2, fo2=2)  # available 1
    result = stock_rules.commit(level, {}, "f1", "fo1", 6)
    assert result.moved == 3  # 2 held + 1 available; the records had no more
    assert (result.level.on_hand, result.level.reserved, result.level.available) == (2, 2, 0)
    assert dict(result.level.holds) == {"fo2": 2}


def test_cancelled_fulfillment_puts_units_back_held_for_their_fulfillment_order() -> None:
    committed = stock_rules.commit(stock(10, fo1=4), {}, "f1", "fo1", 3).level
    back = stock_rules.cancel_commit(committed, {}, "f1", "fo1", hold_again=True)
    assert (back.level.on_hand, back.level.reserved, dict(back.level.holds)) == (10, 4, {"fo1": 4})
    assert stock_rules.commits_at(back.level, "fo1", {})["f1"].state == CommitState.CANCELLED and back.moved == 3
    assert stock_rules.cancel_commit(back.level, {}, "f1", "fo1", hold_again=True).moved == 0


def test_cancelling_a_recorded_commit_takes_its_quantity_from_the_record() -> None:
    level, recorded = stock_rules.settle(stock_rules.commit(stock(10, fo1=4), {}, "f1", "fo1", 3).level, "fo1", {})
    back = stock_rules.cancel_commit(level, recorded, "f1", "fo1", hold_again=False)
    assert (back.level.on_hand, back.level.reserved, back.moved) == (10, 1, 3)
    _, after = stock_rules.settle(back.level, "fo1", recorded)
    assert after == {"f1": Commit("fo1", 3, CommitState.CANCELLED)}


def test_cancelled_fulfillment_of_a_finished_order_goes_back_to_available() -> None:
    committed = stock_rules.commit(stock(10, fo1=4), {}, "f1", "fo1", 4).level
    back = stock_rules.cancel_commit(committed, {}, "f1", "fo1", hold_again=False).level
    assert (back.on_hand, back.reserved, back.available) == (10, 0, 10)


def test_restock_puts_what_the_fulfillment_order_shipped_back_on_hand_once() -> None:
    level = stock(10, fo1=4, fo2=2)
    level = stock_rules.commit(level, {}, "f1", "fo1", 4).level
    level = stock_rules.commit(level, {}, "f2", "fo2", 2).level
    restocked = stock_rules.restock(level, {}, "fo1")
    assert restocked.moved == 4
    assert restocked.level.on_hand == 8
    assert stock_rules.committed(stock_rules.commits_at(restocked.level, "fo1", {})) == 0
    assert stock_rules.commits_at(restocked.level, "fo2", {})["f2"].state == CommitState.COMMITTED
    assert stock_rules.restock(restocked.level, {}, "fo1").moved == 0
    # A restocked shipment cannot be cancelled back into stock a second time.
    assert stock_rules.cancel_commit(restocked.level, {}, "f1", "fo1", hold_again=True).moved == 0


def test_a_commit_never_goes_back_to_committed() -> None:
    """The record may have moved on (restocked) before a slower write brings the commit's mark."""
    level = stock_rules.commit(stock(10), {}, "f1", "fo1", 2).level
    recorded = {"f1": Commit("fo1", 2, CommitState.RESTOCKED)}
    assert stock_rules.commits_at(level, "fo1", recorded) == recorded


# --- what fulfillment asks for -------------------------------------------------------------


def fulfillment_order(location_id: str | None = "wh-1", status: str = "OPEN", **extra: Any) -> FulfillmentOrderSnapshot:
    lines = extra.pop("lines", [
        {"line_item_id": "l1", "sku": "MUG-1", "quantity": 3, "fulfilled_quantity": 1},
        {"line_item_id": "l2", "sku": "MUG-1", "quantity": 2},
        {"line_item_id": "l3", "sku": "TEE-1", "quantity": 1, "fulfilled_quantity": 1},
        {"line_item_id": "l4", "sku": "EBOOK", "quantity": 1, "requires_shipping": False},
    ])  # fmt: skip
    return FulfillmentOrderSnapshot.model_validate({
        "id": "fo1", "order_id": "o1", "location_id": location_id, "status": status, "line_items": lines,
        "created_at": NOW, "updated_at": NOW, **extra,
    })  # fmt: skip


def test_lines_to_reserve_are_the_unfulfilled_shipped_units_per_sku() -> None:
    assert requests.lines_to_reserve(fulfillment_order()) == {"MUG-1": 4}


def test_only_a_live_fulfillment_order_at_a_location_wants_stock() -> None:
    assert requests.wants_stock(fulfillment_order())
    assert not requests.wants_stock(fulfillment_order(location_id=None))
    assert not requests.wants_stock(fulfillment_order(status="CANCELLED"))


# --- locations -----------------------------------------------------------------------------


def directory(*places: tuple[str, int]) -> LocationDirectory:
    return LocationDirectory(tuple(Location(id=i, name=i.upper(), priority=p) for i, p in places))


def test_a_new_location_without_priority_comes_last() -> None:
    change = locations.put_location(directory(("a", 1), ("b", 4)), "c", "C", None, True, None, NOW)
    assert change is not None
    assert [(loc.id, loc.priority) for loc in change.document.locations] == [("a", 1), ("b", 4), ("c", 5)]
    assert [(e.type, e.subject) for e in change.events] == [("location.updated", "c")]


def test_priority_is_unique_and_the_refusal_names_its_holder() -> None:
    with pytest.raises(locations.PriorityTaken, match="priority 1 belongs to location 'a'") as refused:
        locations.put_location(directory(("a", 1), ("b", 2)), "b", "B", 1, True, None, NOW)
    assert refused.value.holder == "a"


def test_saving_a_location_unchanged_emits_nothing() -> None:
    assert locations.put_location(directory(("a", 1)), "a", "A", 1, True, None, NOW) is None


def test_deactivating_a_location_announces_it() -> None:
    change = locations.put_location(directory(("a", 1)), "a", "A", None, False, "acme-3pl", NOW)
    assert change is not None
    updated = Location.model_validate(change.events[0].data)
    assert (updated.priority, updated.active, updated.fulfillment_service) == (1, False, "acme-3pl")


def test_reorder_puts_the_listed_locations_first_and_keeps_the_rest_in_order() -> None:
    change = locations.reorder_locations(directory(("a", 1), ("b", 2), ("c", 3), ("d", 4)), ["c", "b"], NOW)
    assert change is not None
    assert [(loc.id, loc.priority) for loc in change.document.locations] == [
        ("c", 1), ("b", 2), ("a", 3), ("d", 4),
    ]  # fmt: skip
    assert sorted(e.subject for e in change.events) == ["a", "c"]  # only those whose priority moved


def test_reorder_refuses_unknown_or_repeated_locations() -> None:
    with pytest.raises(locations.UnknownLocation, match="'x'"):
        locations.reorder_locations(directory(("a", 1)), ["a", "x"], NOW)
    with pytest.raises(domain.InventoryRuleViolation, match="more than once"):
        locations.reorder_locations(directory(("a", 1), ("b", 2)), ["a", "a"], NOW)


def test_reorder_to_the_same_order_changes_nothing() -> None:
    assert locations.reorder_locations(directory(("a", 1), ("b", 2)), ["a"], NOW) is None


# --- the reservation record ----------------------------------------------------------------


def test_record_announces_each_movement_and_reads_holds_off_the_stock() -> None:
    level = effect(stock_rules.reserve(stock(10), "fo1", 4)).level
    change = reservations.record_movements(
        None, "e1", "o1", "fo1", [level], [Movement("reserved", "wh-1", {"MUG-1": 4})], NOW
    )
    assert change is not None
    assert RECORDS.dump(change.document)["holds"] == [{"location_id": "wh-1", "sku": "MUG-1", "quantity": 4}]
    assert change.document.status == "reserved"
    [event] = change.events
    assert (event.type, event.subject) == ("inventory.reserved", "o1")
    assert event.data["lines"] == [{"sku": "MUG-1", "quantity": 4}]


def test_a_failed_request_is_answered_with_its_shortages() -> None:
    shortage = Shortage(sku="MUG-1", requested=4, available=1)
    movement = Movement("reservation_failed", "wh-1", {"MUG-1": 4}, [shortage])
    change = reservations.record_movements(None, "e1", "o1", "fo1", [], [movement], NOW)
    assert change is not None
    assert change.events[0].type == "inventory.reservation_failed"
    assert change.events[0].data["shortages"] == [{"sku": "MUG-1", "requested": 4, "available": 1, "seq": None}]


def test_releasing_nothing_announces_nothing_and_writes_nothing() -> None:
    assert (
        reservations.record_movements(
            None, "e1", "o1", "fo1", [stock(10)], [Movement("released", "wh-1", {"MUG-1": 0})], NOW
        )
        is None
    )


def test_the_record_takes_in_what_its_fulfillments_took_from_the_stocks_marks() -> None:
    level = stock_rules.commit(effect(stock_rules.reserve(stock(10), "fo1", 4)).level, {}, "f1", "fo1", 3).level
    other = stock_rules.commit(level, {}, "f9", "fo9", 1).level  # another fulfillment order's mark stays out
    change = reservations.record_movements(
        None, "e2", "o1", "fo1", [other], [Movement("committed", "wh-1", {"MUG-1": 3})], NOW
    )
    assert change is not None
    stored = RECORDS.dump(change.document)
    assert stored["fulfillments"] == [
        {"fulfillment_id": "f1", "location_id": "wh-1", "sku": "MUG-1", "quantity": 3, "state": "committed"}
    ]
    assert stored["holds"] == [{"location_id": "wh-1", "sku": "MUG-1", "quantity": 1}]
    assert reservations.recorded_commits(change.document, "wh-1", "MUG-1") == {"f1": Commit("fo1", 3)}


def test_an_answer_is_named_by_the_request_it_answers_and_sent_once() -> None:
    """A redelivered request announces again, under the same id, what a crash kept from being
    recorded; an answer already written with the stock change is not written again with the record."""
    movement = Movement("reserved", "wh-1", {"MUG-1": 4})
    first, again = (reservations.movement_event("e1", "o1", "fo1", movement) for _ in range(2))
    assert first.id == again.id != reservations.movement_event("e2", "o1", "fo1", movement).id
    level = effect(stock_rules.reserve(stock(10), "fo1", 4)).level
    change = reservations.record_movements(None, "e1", "o1", "fo1", [level], [movement], NOW, sent={first.id})
    assert change is not None and change.events == [] and change.document.status == "reserved"


def test_only_a_one_stock_fulfillment_order_with_nothing_unsent_answers_with_its_stock() -> None:
    one = ReservationRecord("o1", "fo1", location_id="wh-1", holds=(RecordedHold("wh-1", "MUG-1", 1),))
    assert reservations.answers_ride_with_stock(None, False, "wh-1", ["MUG-1"])
    assert reservations.answers_ride_with_stock(one, False, "wh-1", ["MUG-1"])
    assert not reservations.answers_ride_with_stock(one, True, "wh-1", ["MUG-1"])  # its record's events go first
    assert not reservations.answers_ride_with_stock(None, False, "wh-1", ["MUG-1", "TEE-1"])
    assert not reservations.answers_ride_with_stock(one, False, "wh-1", ["TEE-1"])
    assert not reservations.answers_ride_with_stock(one, False, "wh-2", ["MUG-1"])


def test_a_fulfillment_order_seen_through_to_the_end_has_no_stock_to_let_go() -> None:
    done = ReservationRecord(
        "o1", "fo1", fulfillments=(RecordedCommit("f1", "wh-1", "MUG-1", 4, CommitState.COMMITTED),)
    )
    lines = [{"line_item_id": "l1", "sku": "MUG-1", "quantity": 4, "fulfilled_quantity": 4}]
    assert reservations.release_targets(done, fulfillment_order(status="CLOSED", lines=lines)) == {}
    # Without a record of it, the stock at its location is looked at all the same.
    assert reservations.release_targets(None, fulfillment_order(status="CLOSED", lines=lines)) == {"wh-1": ["MUG-1"]}
    held = replace(done, holds=(RecordedHold("wh-2", "TEE-1", 1),))
    assert reservations.release_targets(held, fulfillment_order(status="CANCELLED", lines=lines)) == {"wh-2": ["TEE-1"]}
