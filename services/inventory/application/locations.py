"""Locations: saving and re-ordering them, and the directory as requests read it (from memory
for a few seconds, since every reservation needs its location)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from services.inventory.domain import locations
from services.inventory.domain.locations import LOCATION_DIRECTORY, NO_LOCATIONS, LocationDirectory, UnknownLocation
from shared.aggregates import Change
from shared.catalog import Location, ServiceWorkflow
from shared.clock import now_iso
from shared.store import AggregateStore

# How long a location seen active is taken as active for a reservation without reading the
# directory again. A location not known or not active is always read afresh, and this
# process's own changes of locations are seen at once; a deactivation made through another
# replica reaches this one's reservations within this many seconds.
DIRECTORY_SECONDS = 5.0

DirectoryRule = Callable[[LocationDirectory | None], Change[LocationDirectory] | None]


class Locations:
    """The location directory, and this process's recent view of it."""

    def __init__(self, store: AggregateStore[LocationDirectory]) -> None:
        self.store = store
        self._directory: tuple[float, LocationDirectory] | None = None

    async def all(self) -> list[Location]:
        return (await self._read()).by_priority()

    async def get(self, location_id: str) -> Location | None:
        return (await self._read()).find(location_id)

    async def put(
        self,
        location_id: str,
        name: str,
        priority: int | None,
        active: bool,
        fulfillment_service: str | None,
        workflow: ServiceWorkflow = ServiceWorkflow.NEW,
    ) -> tuple[Location, bool]:
        """The location as saved, and whether it is new."""
        before, after = await self._change(
            lambda directory: locations.put_location(
                directory, location_id, name, priority, active, fulfillment_service, now_iso(), workflow
            )
        )
        location = after.find(location_id)
        assert location is not None
        return location, before.find(location_id) is None

    async def reorder(self, location_ids: Sequence[str]) -> list[Location]:
        _, after = await self._change(lambda directory: locations.reorder_locations(directory, location_ids, now_iso()))
        return after.by_priority()

    async def ranks(self) -> dict[str, int]:
        """Each location's place in the priority order (0 first), as recently seen."""
        return {location.id: index for index, location in enumerate((await self._recent()).by_priority())}

    async def usable(self, location_id: str) -> Location | None:
        """The location as recently seen if it was active then; otherwise as it is now."""
        location = (await self._recent()).find(location_id)
        if location is not None and location.active:
            return location
        return (await self._read()).find(location_id)

    async def known(self, location_id: str) -> Location:
        """Locations are never deleted: one seen recently is still there."""
        location = (await self._recent()).find(location_id) or await self.get(location_id)
        if location is None:
            raise UnknownLocation([location_id])
        return location

    async def _change(self, rule: DirectoryRule) -> tuple[LocationDirectory, LocationDirectory]:
        """Apply a rule to the directory: the directory as the rule last saw it, and as it is now."""
        seen: list[LocationDirectory | None] = []

        def seeing(directory: LocationDirectory | None) -> Change[LocationDirectory] | None:
            seen.append(directory)
            return rule(directory)

        saved = await self.store.apply(LOCATION_DIRECTORY, seeing)
        before = seen[-1] or NO_LOCATIONS
        return before, self._seen(saved or before)

    async def _read(self) -> LocationDirectory:
        return self._seen(await self.store.get(LOCATION_DIRECTORY) or NO_LOCATIONS)

    async def _recent(self) -> LocationDirectory:
        if self._directory is not None and time.monotonic() - self._directory[0] < DIRECTORY_SECONDS:
            return self._directory[1]
        return await self._read()

    def _seen(self, directory: LocationDirectory) -> LocationDirectory:
        self._directory = (time.monotonic(), directory)
        return directory
