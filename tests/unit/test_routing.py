"""Routing by location priority: one location when one can ship all, else the fewest, by priority."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from services.fulfillment.domain.routing import LineNeed, RoutingLocation, RoutingPlan, fewest_locations, route

A = RoutingLocation("A", "Stockholm", priority=1)
B = RoutingLocation("B", "Gothenburg", priority=2)
C = RoutingLocation("C", "Malmo", priority=3)
D = RoutingLocation("D", "Kiruna", priority=4)


def lines(**quantities: int) -> list[LineNeed]:
    return [LineNeed(f"line-{sku}", sku, quantity) for sku, quantity in quantities.items()]


def placed(plan: RoutingPlan) -> dict[str, dict[str, int]]:
    """location -> sku -> quantity"""
    out: dict[str, dict[str, int]] = {}
    for allocation in plan.allocations:
        for line in allocation.lines:
            out.setdefault(allocation.location.id, {}).setdefault(line.sku, 0)
            out[allocation.location.id][line.sku] += line.quantity
    return out


def test_highest_priority_location_that_can_ship_everything_gets_it_all() -> None:
    stock = {("A", "MUG"): 5, ("A", "CAP"): 0, ("B", "MUG"): 5, ("B", "CAP"): 5, ("C", "MUG"): 9, ("C", "CAP"): 9}
    plan = route(lines(MUG=2, CAP=1), [C, B, A], stock)
    assert placed(plan) == {"B": {"MUG": 2, "CAP": 1}}
    assert not plan.split and not plan.unfulfillable
    reason = plan.allocations[0].reason
    assert "Gothenburg (priority 2) is the highest-priority active location with stock for every line" in reason
    assert "Stockholm (priority 1) could not ship all of it" in reason


def test_priority_one_wins_over_a_location_with_more_stock() -> None:
    plan = route(lines(MUG=1), [A, B], {("A", "MUG"): 1, ("B", "MUG"): 100})
    assert placed(plan) == {"A": {"MUG": 1}}


def test_inactive_and_excluded_locations_are_skipped() -> None:
    inactive_a = RoutingLocation("A", "Stockholm", priority=1, active=False)
    stock = {("A", "MUG"): 5, ("B", "MUG"): 5, ("C", "MUG"): 5}
    assert placed(route(lines(MUG=1), [inactive_a, B, C], stock)) == {"B": {"MUG": 1}}
    plan = route(lines(MUG=1), [A, B, C], stock, exclude=["A", "B"])
    assert placed(plan) == {"C": {"MUG": 1}}
    assert "A, B excluded after a failed reservation" in plan.allocations[0].reason


def test_split_across_two_locations_when_none_can_ship_all() -> None:
    stock = {("A", "MUG"): 3, ("A", "CAP"): 0, ("B", "MUG"): 0, ("B", "CAP"): 2}
    plan = route(lines(MUG=3, CAP=2), [A, B], stock)
    assert placed(plan) == {"A": {"MUG": 3}, "B": {"CAP": 2}}
    assert plan.split and not plan.unfulfillable
    assert all("split over 2 location(s)" in allocation.reason for allocation in plan.allocations)


def test_one_line_split_by_quantity_takes_the_higher_priority_stock_first() -> None:
    plan = route(lines(MUG=5), [A, B, C], {("A", "MUG"): 2, ("B", "MUG"): 1, ("C", "MUG"): 4})
    # A+C (2 locations) beats A+B+C; A comes first by priority and gives what it has.
    assert placed(plan) == {"A": {"MUG": 2}, "C": {"MUG": 3}}


def test_fewest_fulfillment_orders_even_when_priority_order_would_make_more() -> None:
    # Greedy by priority would take A (X), B (Y) and D (Z): three. C ships X and Y, D ships Z: two.
    stock = {("A", "X"): 1, ("B", "Y"): 1, ("C", "X"): 1, ("C", "Y"): 1, ("D", "Z"): 1}
    plan = route(lines(X=1, Y=1, Z=1), [A, B, C, D], stock)
    assert placed(plan) == {"C": {"X": 1, "Y": 1}, "D": {"Z": 1}}


def test_among_equally_few_the_first_by_priority_wins() -> None:
    stock = {("A", "X"): 1, ("B", "Y"): 1, ("C", "Y"): 1, ("D", "X"): 1}
    assert placed(route(lines(X=1, Y=1), [D, C, B, A], stock)) == {"A": {"X": 1}, "B": {"Y": 1}}


def test_what_no_location_has_is_left_unfulfillable_with_the_reason() -> None:
    stock = {("A", "MUG"): 1, ("B", "MUG"): 1}
    plan = route(lines(MUG=3, CAP=1), [A, B], stock)
    assert placed(plan) == {"A": {"MUG": 1}, "B": {"MUG": 1}}
    assert Counter({line.sku: line.quantity for line in plan.unfulfillable}) == Counter(MUG=1, CAP=1)
    assert plan.unfulfillable_reason == "no active location has stock for 1 x MUG, 1 x CAP"


def test_nothing_anywhere_means_everything_is_unfulfillable() -> None:
    plan = route(lines(MUG=2), [A, B], {})
    assert plan.allocations == () and plan.unfulfillable == (LineNeed("line-MUG", "MUG", 2),)
    assert route(lines(MUG=2), [], {}).unfulfillable == (LineNeed("line-MUG", "MUG", 2),)


def test_partly_short_sku_still_goes_to_the_single_location_with_what_can_ship() -> None:
    stock = {("A", "MUG"): 1, ("A", "CAP"): 1, ("B", "CAP"): 5}
    plan = route(lines(MUG=2, CAP=1), [A, B], stock)
    assert placed(plan) == {"A": {"MUG": 1, "CAP": 1}}
    assert plan.unfulfillable == (LineNeed("line-MUG", "MUG", 1),)


def test_two_lines_of_one_sku_share_the_stock() -> None:
    needs = [LineNeed("l1", "MUG", 2), LineNeed("l2", "MUG", 2)]
    plan = route(needs, [A, B], {("A", "MUG"): 3, ("B", "MUG"): 1})
    assert [(a.location.id, a.lines) for a in plan.allocations] == [
        ("A", (LineNeed("l1", "MUG", 2), LineNeed("l2", "MUG", 1))),
        ("B", (LineNeed("l2", "MUG", 1),)),
    ]


def test_no_lines_no_plan() -> None:
    assert route([], [A], {("A", "MUG"): 1}) == RoutingPlan(())
    assert route([LineNeed("l", "MUG", 0)], [A], {}) == RoutingPlan(())


def test_a_search_too_large_for_the_budget_still_covers_everything() -> None:
    rng = random.Random(7)
    locations = [RoutingLocation(f"L{i:02}", f"L{i}", priority=i + 1) for i in range(50)]
    skus = [f"S{i}" for i in range(100)]
    stock = {(loc.id, sku): rng.choice([0, 0, 0, 1, 2]) for loc in locations for sku in skus}
    needs = [LineNeed(f"line-{sku}", sku, 1) for sku in skus]
    plan = route(needs, locations, stock, search_budget=50)
    assert not plan.unfulfillable or all(
        sum(stock[loc.id, line.sku] for loc in locations) == 0 for line in plan.unfulfillable
    )
    assert sum(line.quantity for a in plan.allocations for line in a.lines) + len(plan.unfulfillable) == 100


# --- properties -------------------------------------------------------------------------

SKUS = ["X", "Y", "Z", "W"]


Scenario = tuple[list[LineNeed], list[RoutingLocation], dict[tuple[str, str], int]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(min_value=1, max_value=6))
    priorities = draw(st.lists(st.integers(1, 4), min_size=count, max_size=count))
    actives = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    locations = [
        RoutingLocation(f"L{i}", f"loc {i}", priority=priority, active=active or i == 0)
        for i, (priority, active) in enumerate(zip(priorities, actives, strict=True))
    ]
    stock = {(loc.id, sku): draw(st.integers(0, 4)) for loc in locations for sku in SKUS}
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=5))
    needs = [LineNeed(f"line-{i}", sku, draw(st.integers(1, 5))) for i, sku in enumerate(skus)]
    return needs, locations, stock


def _active(locations: list[RoutingLocation]) -> list[RoutingLocation]:
    return sorted((loc for loc in locations if loc.active), key=lambda loc: loc.rank)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_never_routes_more_than_available(scenario: Scenario) -> None:
    needs, locations, stock = scenario
    plan = route(needs, locations, stock)
    for location_id, skus in placed(plan).items():
        for sku, quantity in skus.items():
            assert quantity <= stock[location_id, sku]
    assert all(allocation.location.active for allocation in plan.allocations)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_every_unit_is_routed_or_unfulfillable_and_only_what_nobody_has(scenario: Scenario) -> None:
    needs, locations, stock = scenario
    plan = route(needs, locations, stock)
    per_line: Counter[str] = Counter()
    for line in [*(line for a in plan.allocations for line in a.lines), *plan.unfulfillable]:
        per_line[line.line_item_id] += line.quantity
    assert per_line == Counter({need.line_item_id: need.quantity for need in needs})
    demand: Counter[str] = Counter()
    for need in needs:
        demand[need.sku] += need.quantity
    short: Counter[str] = Counter()
    for line in plan.unfulfillable:
        short[line.sku] += line.quantity
    for sku, quantity in demand.items():
        total = sum(stock[loc.id, sku] for loc in _active(locations))
        assert short[sku] == max(0, quantity - total)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_never_splits_when_one_location_can_ship_all_and_picks_the_first_by_priority(
    scenario: Scenario,
) -> None:
    needs, locations, stock = scenario
    plan = route(needs, locations, stock)
    demand: Counter[str] = Counter()
    for need in needs:
        demand[need.sku] += need.quantity
    able = [loc for loc in _active(locations) if all(stock[loc.id, sku] >= q for sku, q in demand.items())]
    if able:
        assert [a.location.id for a in plan.allocations] == [able[0].id]
        assert not plan.unfulfillable


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_fewest_locations_first_by_priority(scenario: Scenario) -> None:
    needs, locations, stock = scenario
    plan = route(needs, locations, stock)
    active = _active(locations)
    demand: Counter[str] = Counter()
    for need in needs:
        demand[need.sku] += need.quantity
    coverable = {sku: min(q, sum(stock[loc.id, sku] for loc in active)) for sku, q in demand.items()}

    def covers(group: tuple[RoutingLocation, ...]) -> bool:
        return all(sum(stock[loc.id, sku] for loc in group) >= q for sku, q in coverable.items())

    best: list[str] = []
    for size in range(0, len(active) + 1):
        found = [group for group in itertools.combinations(active, size) if covers(group)]
        if found:
            best = [loc.id for loc in min(found, key=lambda g: [loc.rank for loc in g])]
            break
    assert sorted((a.location for a in plan.allocations), key=lambda loc: loc.rank) == [
        loc for loc in active if loc.id in best
    ]


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.randoms())
def test_property_deterministic_whatever_the_order_of_locations(scenario: Scenario, rng: random.Random) -> None:
    needs, locations, stock = scenario
    shuffled = list(locations)
    rng.shuffle(shuffled)
    assert route(needs, locations, stock) == route(needs, shuffled, stock)


def test_fewest_locations_needs_nothing_for_nothing() -> None:
    assert fewest_locations([A, B], {}, {"MUG": 0}) == []
