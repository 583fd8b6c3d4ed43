"""Who a caller is: the scopes the platform knows and the verified `Principal` a token yields.

Apart from the verifying and the route checks because both sides (shared.auth.tokens makes a
Principal, shared.auth.access checks one) speak this vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

MERCHANT_SCOPES = (
    "orders:read",
    "orders:write",
    "inventory:read",
    "inventory:write",
    "fulfillment:read",
    "fulfillment:write",
    "settings:write",
)
SERVICE_SCOPE_PREFIX = "fulfillment_service:"
SERVICE_SCOPE = SERVICE_SCOPE_PREFIX + "{id}"
"""How the docs name a fulfillment service's scope: `fulfillment_service:` and its id."""


@dataclass(frozen=True)
class Principal:
    """A verified caller: the token's subject and the scopes it was granted."""

    subject: str
    scopes: frozenset[str]

    @property
    def fulfillment_services(self) -> frozenset[str]:
        """The fulfillment services this caller speaks for (its `fulfillment_service:<id>` scopes)."""
        return frozenset(
            scope.removeprefix(SERVICE_SCOPE_PREFIX)
            for scope in self.scopes
            if scope.startswith(SERVICE_SCOPE_PREFIX) and len(scope) > len(SERVICE_SCOPE_PREFIX)
        )

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    def speaks_for(self, fulfillment_service: str | None) -> bool:
        return fulfillment_service is not None and fulfillment_service in self.fulfillment_services
