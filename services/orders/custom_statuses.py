"""The merchant's own order statuses (`/custom-statuses`): a code and a name each. Orders store the
code; the name is looked up whenever an order is shown, so renaming a status renames it on every
order, past ones included, in one write.

All of them live in one document (`custom_statuses/shop`, read by its key: a shop has a handful),
written whole with optimistic concurrency like any aggregate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from shared.aggregates import Change, ModelMapping
from shared.rules import RuleViolation
from shared.store import AggregateStore

SHOP = "shop"
MAX_STATUSES = 200


class UnknownStatus(LookupError):
    def __init__(self, code: str) -> None:
        super().__init__(f"custom status {code!r} does not exist")
        self.code = code


class StatusRuleViolation(RuleViolation):
    """A change the statuses cannot take (a code taken, too many)."""


@dataclass(frozen=True, kw_only=True)
class CustomStatuses:
    """The shop's custom statuses, name by code."""

    id: str = SHOP
    names: Mapping[str, str] = field(default_factory=dict)


def define(statuses: CustomStatuses | None, code: str, name: str) -> Change[CustomStatuses] | None:
    """A new status; defining one as it is already changes nothing (a retried request)."""
    statuses = statuses or CustomStatuses()
    if statuses.names.get(code) == name:
        return None
    if code in statuses.names:
        raise StatusRuleViolation(f"custom status {code!r} exists already: rename it with PUT /custom-statuses/{code}")
    if len(statuses.names) >= MAX_STATUSES:
        raise StatusRuleViolation(f"a shop has at most {MAX_STATUSES} custom statuses")
    return Change(replace(statuses, names={**statuses.names, code: name}))


def rename(statuses: CustomStatuses, code: str, new_code: str, name: str) -> Change[CustomStatuses] | None:
    """Rename a status. Its code stays: orders hold it (a new code would leave them behind)."""
    if code not in statuses.names:
        raise UnknownStatus(code)
    if new_code != code:
        raise StatusRuleViolation(f"the code of a status cannot change ({code!r}): orders hold it; rename only")
    if statuses.names[code] == name:
        return None
    return Change(replace(statuses, names={**statuses.names, code: name}))


MAPPING = ModelMapping(CustomStatuses)


class Statuses:
    """The use cases: define, rename, list, and the names to show orders with."""

    def __init__(self, statuses: AggregateStore[CustomStatuses]) -> None:
        self.store = statuses

    async def all(self) -> CustomStatuses:
        return await self.store.get(SHOP) or CustomStatuses()

    async def names(self) -> Mapping[str, str]:
        return (await self.all()).names

    async def define(self, code: str, name: str) -> CustomStatuses:
        await self.store.apply(SHOP, lambda statuses: define(statuses, code, name))
        return await self.all()

    async def rename(self, code: str, new_code: str, name: str) -> CustomStatuses:
        missing = UnknownStatus(code)
        await self.store.apply(SHOP, lambda statuses: rename(statuses, code, new_code, name), missing=missing)
        return await self.all()

    async def require(self, code: str) -> None:
        if code not in await self.names():
            raise UnknownStatus(code)
