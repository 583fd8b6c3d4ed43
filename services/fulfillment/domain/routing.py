"""Routing: which locations ship which lines, decided from a view of stock and location priority.

The rules, in the order they apply:

1. The highest-priority active location that can ship every line gets them all: one
   fulfillment order, no split.
2. When no single location can, the lines are split over as few locations as possible;
   among equally few, the set that comes first by priority wins, and inside it each line
   takes stock from the higher-priority location first.
3. What no active location can cover stays unrouted: it becomes an out-of-stock hold.

Routing never plans more than a location has available, and it is deterministic: the same
lines, stock and priorities give the same plan, whatever order the locations come in.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate

from shared.catalog import ServiceWorkflow

Stock = Mapping[tuple[str, str], int]
"""Available units by (location id, sku): the local view kept from inventory.level_changed."""

SEARCH_BUDGET = 2_000
"""Search steps spent looking for the fewest locations before settling for a greedy split."""


@dataclass(frozen=True)
class LineNeed:
    """Some quantity of one order line that has to ship from somewhere."""

    line_item_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class RoutingLocation:
    id: str
    name: str
    priority: int
    active: bool = True
    fulfillment_service: str | None = None
    workflow: ServiceWorkflow = ServiceWorkflow.NEW

    @property
    def rank(self) -> tuple[int, str]:
        """Priority 1 first; the id breaks ties so the order never depends on input order."""
        return (self.priority, self.id)

    def describe(self) -> str:
        return f"{self.name} (priority {self.priority})"


@dataclass(frozen=True)
class Allocation:
    """Lines one location ships: one fulfillment order, and why that location was chosen."""

    location: RoutingLocation
    lines: tuple[LineNeed, ...]
    reason: str


@dataclass(frozen=True)
class RoutingPlan:
    allocations: tuple[Allocation, ...]
    unfulfillable: tuple[LineNeed, ...] = ()
    unfulfillable_reason: str = ""

    @property
    def split(self) -> bool:
        return len(self.allocations) > 1


def route(
    lines: Iterable[LineNeed],
    locations: Iterable[RoutingLocation],
    stock: Stock,
    exclude: Iterable[str] = (),
    search_budget: int = SEARCH_BUDGET,
) -> RoutingPlan:
    """Route lines to locations by the rules above; `exclude` names locations to skip
    (where a reservation has just failed)."""
    needs = [line for line in lines if line.quantity > 0]
    excluded = set(exclude)
    candidates = sorted((loc for loc in locations if loc.active and loc.id not in excluded), key=lambda loc: loc.rank)
    if not needs:
        return RoutingPlan(())
    demand: dict[str, int] = {}
    for line in needs:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    available = {(loc.id, sku): max(0, stock.get((loc.id, sku), 0)) for loc in candidates for sku in demand}
    note = f"; {', '.join(sorted(excluded))} excluded after a failed reservation" if excluded else ""

    for position, location in enumerate(candidates):
        if all(available[location.id, sku] >= quantity for sku, quantity in demand.items()):
            passed = [loc.describe() for loc in candidates[:position]]
            reason = f"{location.describe()} is the highest-priority active location with stock for every line"
            if passed:
                reason += f"; {', '.join(passed)} could not ship all of it"
            return RoutingPlan((Allocation(location, tuple(needs), reason + note),))

    coverable = {
        sku: min(quantity, sum(available[loc.id, sku] for loc in candidates)) for sku, quantity in demand.items()
    }
    chosen = fewest_locations(candidates, available, coverable, search_budget)
    allocations, unfulfillable = _allocate(needs, chosen, available)
    split_reason = (
        f"no single active location can ship every line: split over {len(allocations)} location(s), "
        "the fewest that can, chosen by priority"
        if len(allocations) > 1
        else "no active location can ship every line; this is the highest-priority one with stock for what can ship"
    )
    planned = tuple(
        Allocation(
            location,
            tuple(lines),
            f"{split_reason}; {location.describe()} ships {_describe_lines(lines)}{note}",
        )
        for location, lines in allocations
    )
    short = _shortfall(unfulfillable)
    reason = f"no active location has stock for {short}{note}" if unfulfillable else ""
    return RoutingPlan(planned, tuple(unfulfillable), reason)


def fewest_locations(
    candidates: list[RoutingLocation],
    available: Mapping[tuple[str, str], int],
    need: Mapping[str, int],
    search_budget: int = SEARCH_BUDGET,
) -> list[RoutingLocation]:
    """The smallest set of locations whose stock covers `need`, the first by priority among
    equally small ones, in priority order. Past `search_budget` steps, a greedy cover."""
    need = {sku: quantity for sku, quantity in need.items() if quantity > 0}
    if not need:
        return []
    greedy = _greedy_cover(candidates, available, need)
    search = _CoverSearch(candidates, available, need, search_budget)
    try:
        for size in range(1, len(greedy) + 1):
            found = search.first_cover_of_size(size)
            if found is not None:
                return found
    except _BudgetExhausted:
        pass
    return greedy


class _BudgetExhausted(Exception):
    pass


class _CoverSearch:
    """Depth-first search over location sets for covers of a given size. It branches on the
    holders of one uncovered sku (the one fewest locations hold): every cover that extends
    the current set must contain one more of them. A set that cannot reach a cover within
    the size (by a lower bound per sku) is not explored."""

    def __init__(
        self,
        candidates: list[RoutingLocation],
        available: Mapping[tuple[str, str], int],
        need: Mapping[str, int],
        budget: int,
    ) -> None:
        skus = list(need)
        self.candidates = candidates
        self.budget = budget
        self.need = tuple(need[sku] for sku in skus)
        self.stock = [tuple(min(available[loc.id, sku], need[sku]) for sku in skus) for loc in candidates]
        self.holders = [[i for i in range(len(candidates)) if self.stock[i][k] > 0] for k in range(len(skus))]
        self.scarcest_first = sorted(range(len(skus)), key=lambda k: (len(self.holders[k]), k))
        # best_sums[k][m]: the most m locations can hold of sku k, for the lower bound
        self.best_sums = [
            list(accumulate(sorted((self.stock[i][k] for i in self.holders[k]), reverse=True), initial=0))
            for k in range(len(skus))
        ]

    def first_cover_of_size(self, size: int) -> list[RoutingLocation] | None:
        best: tuple[int, ...] | None = None
        seen: set[frozenset[int]] = set()
        # (the set, what its parent still needed, the location added): a child's needs are
        # computed only when it is explored
        stack: list[tuple[frozenset[int], tuple[int, ...], int | None]] = [(frozenset(), self.need, None)]
        while stack:
            chosen, remaining, added = stack.pop()
            if chosen in seen:
                continue
            seen.add(chosen)
            self.budget -= 1
            if self.budget < 0:
                raise _BudgetExhausted
            if added is not None:
                remaining = tuple(max(0, r - s) for r, s in zip(remaining, self.stock[added], strict=True))
            branch_on = next((k for k in self.scarcest_first if remaining[k] > 0), None)
            if branch_on is None:
                ranks = tuple(sorted(chosen))
                best = ranks if best is None or ranks < best else best
                continue
            if len(chosen) + self._at_least(remaining) > size:
                continue
            stack.extend((chosen | {i}, remaining, i) for i in reversed(self.holders[branch_on]) if i not in chosen)
        return None if best is None else [self.candidates[i] for i in best]

    def _at_least(self, remaining: tuple[int, ...]) -> int:
        """How many more locations any cover needs, at least: the most any one sku needs."""
        return max(
            (bisect_left(self.best_sums[k], quantity) for k, quantity in enumerate(remaining) if quantity > 0),
            default=0,
        )


def _greedy_cover(
    candidates: list[RoutingLocation], available: Mapping[tuple[str, str], int], need: Mapping[str, int]
) -> list[RoutingLocation]:
    """Repeatedly take the location that covers the most of what is left (priority breaks ties)."""
    remaining = dict(need)
    holdings = {
        loc.id: [(sku, available[loc.id, sku]) for sku in need if available[loc.id, sku] > 0] for loc in candidates
    }
    chosen: list[RoutingLocation] = []
    while any(remaining.values()):
        best, best_gain = None, 0
        for location in candidates:
            if location in chosen:
                continue
            gain = sum(min(units, remaining[sku]) for sku, units in holdings[location.id])
            if gain > best_gain:
                best, best_gain = location, gain
        if best is None:
            break
        chosen.append(best)
        for sku, units in holdings[best.id]:
            remaining[sku] = max(0, remaining[sku] - units)
    return sorted(chosen, key=lambda loc: loc.rank)


def _allocate(
    needs: list[LineNeed], chosen: list[RoutingLocation], available: Mapping[tuple[str, str], int]
) -> tuple[list[tuple[RoutingLocation, list[LineNeed]]], list[LineNeed]]:
    """Each line takes stock from the chosen locations in priority order; the rest is short."""
    left = dict(available)
    per_location: dict[str, list[LineNeed]] = {loc.id: [] for loc in chosen}
    unfulfillable: list[LineNeed] = []
    for line in needs:
        remaining = line.quantity
        for location in chosen:
            take = min(remaining, left[location.id, line.sku])
            if take:
                per_location[location.id].append(LineNeed(line.line_item_id, line.sku, take))
                left[location.id, line.sku] -= take
                remaining -= take
        if remaining:
            unfulfillable.append(LineNeed(line.line_item_id, line.sku, remaining))
    allocations = [(loc, per_location[loc.id]) for loc in chosen if per_location[loc.id]]
    return allocations, unfulfillable


def _describe_lines(lines: Iterable[LineNeed]) -> str:
    return ", ".join(f"{line.quantity} x {line.sku}" for line in lines)


def _shortfall(lines: Iterable[LineNeed]) -> str:
    short: dict[str, int] = {}
    for line in lines:
        short[line.sku] = short.get(line.sku, 0) + line.quantity
    return ", ".join(f"{quantity} x {sku}" for sku, quantity in short.items())
