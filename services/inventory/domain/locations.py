"""Locations by priority: the directory of a shop's locations, 1 first, each priority held by
one location. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.inventory.domain import SOURCE, InventoryRuleViolation
from shared.aggregates import Change
from shared.catalog import Location, ServiceWorkflow
from shared.events import new_event

LOCATION_DIRECTORY = "directory"
"""All locations live in one document, so that priority stays unique and a re-order is one
atomic write (a shop has a handful of locations, not thousands)."""


class PriorityTaken(InventoryRuleViolation):
    def __init__(self, priority: int, holder: str) -> None:
        self.priority = priority
        self.holder = holder
        super().__init__(
            f"priority {priority} belongs to location {holder!r}; "
            "choose a free priority or re-order with PUT /locations/priorities"
        )


class UnknownLocation(LookupError):
    """A location id that is not in the directory."""

    def __init__(self, location_ids: Iterable[str]) -> None:
        self.location_ids = sorted(location_ids)
        super().__init__(f"no location {', '.join(repr(i) for i in self.location_ids)}")


@dataclass(frozen=True)
class LocationDirectory:
    """Every location of the shop, as one aggregate."""

    locations: tuple[Location, ...] = ()
    updated_at: str | None = None

    def by_priority(self) -> list[Location]:
        """The locations by priority, 1 first."""
        return sorted(self.locations, key=lambda location: location.priority)

    def find(self, location_id: str) -> Location | None:
        return next((location for location in self.locations if location.id == location_id), None)


NO_LOCATIONS = LocationDirectory()
"""The directory of a shop that has not saved a location yet."""


def put_location(
    directory: LocationDirectory | None,
    location_id: str,
    name: str,
    priority: int | None,
    active: bool,
    fulfillment_service: str | None,
    now: str,
    workflow: ServiceWorkflow = ServiceWorkflow.NEW,
) -> Change[LocationDirectory] | None:
    """Create or update a location. Priority is unique: taking another location's priority is
    refused (re-order instead); no priority means last for a new location, unchanged otherwise."""
    known = {location.id: location for location in (directory or NO_LOCATIONS).by_priority()}
    current = known.get(location_id)
    if priority is None:
        priority = current.priority if current else max((loc.priority for loc in known.values()), default=0) + 1
    holder = next((loc for loc in known.values() if loc.priority == priority and loc.id != location_id), None)
    if holder is not None:
        raise PriorityTaken(priority, holder.id)
    wanted = Location(
        id=location_id,
        name=name,
        priority=priority,
        active=active,
        fulfillment_service=fulfillment_service,
        workflow=workflow if fulfillment_service else ServiceWorkflow.NEW,
    )
    if wanted == current:
        return None
    known[location_id] = wanted
    return _directory(known.values(), now, [wanted])


def reorder_locations(
    directory: LocationDirectory | None, location_ids: Sequence[str], now: str
) -> Change[LocationDirectory] | None:
    """The listed locations take priorities 1..n in that order; the others keep their relative
    order after them. One write; a location.updated for every location whose priority moved."""
    known = (directory or NO_LOCATIONS).by_priority()
    missing = set(location_ids) - {location.id for location in known}
    if missing:
        raise UnknownLocation(missing)
    if len(set(location_ids)) != len(location_ids):
        raise InventoryRuleViolation("location_ids lists a location more than once")
    first = [next(loc for loc in known if loc.id == location_id) for location_id in location_ids]
    rest = [loc for loc in known if loc.id not in set(location_ids)]
    renumbered = [loc.model_copy(update={"priority": rank}) for rank, loc in enumerate([*first, *rest], start=1)]
    moved = [new for new, old in zip(renumbered, [*first, *rest], strict=True) if new.priority != old.priority]
    if not moved:
        return None
    return _directory(renumbered, now, moved)


def _directory(all_locations: Iterable[Location], now: str, updated: Iterable[Location]) -> Change[LocationDirectory]:
    ordered = tuple(sorted(all_locations, key=lambda location: location.priority))
    events = [new_event(SOURCE, "location.updated", loc.id, loc) for loc in updated]
    return Change(LocationDirectory(ordered, now), events)
