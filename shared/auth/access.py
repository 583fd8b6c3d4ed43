"""The HTTP side of the boundary: what each route needs and the middleware that enforces it.

Every route declares `requires(...)` or `PUBLIC` (`install` refuses an app with a route that
declares neither); `AuthMiddleware` checks the caller before anything else runs, so a refused
request changes nothing, and the caller's `sub` becomes the actor of what follows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import JsonValue
from starlette.routing import BaseRoute, Match

from shared.auth.errors import (
    NO_TOKEN,
    AuthConfigError,
    AuthError,
    AuthUnavailable,
    Forbidden,
    Unauthenticated,
    auth_error_response,
)
from shared.auth.principal import MERCHANT_SCOPES, SERVICE_SCOPE, Principal
from shared.auth.tokens import Authenticator
from shared.events import acting_as

SCHEME_NAME = "bearerAuth"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Access:
    """What a route needs: every scope in `scopes`, or else (when `fulfillment_service`) a
    fulfillment service's token, whose reach the route limits to that service's own orders."""

    scopes: tuple[str, ...] = ()
    fulfillment_service: bool = False

    def check(self, principal: Principal) -> None:
        missing = [scope for scope in self.scopes if not principal.may(scope)]
        if not missing and (self.scopes or not self.fulfillment_service):
            return
        if self.fulfillment_service and principal.fulfillment_services:
            return
        needed = missing or [SERVICE_SCOPE]
        alternative = (
            f" (or {SERVICE_SCOPE}, for a fulfillment service's own orders)" if self.fulfillment_service else ""
        )
        raise Forbidden(f"this needs scope {' and '.join(needed)}{alternative}", needed)


_ACCESS = "_access"
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name=SCHEME_NAME,
    bearerFormat="JWT",
    description="A JWT from the identity provider (locally: `.local/admin-token`, or `python -m deploy.auth token`). "
    "Scopes (space-separated `scope` claim): " + ", ".join(MERCHANT_SCOPES) + f", and {SERVICE_SCOPE} for a "
    "third-party fulfillment service, which reaches only the fulfillment orders at its own locations.",
)


def requires(*scopes: str, fulfillment_service: bool = False) -> Any:
    """A route dependency: the caller needs every one of `scopes` (documented per operation in
    OpenAPI), or else, with `fulfillment_service`, a fulfillment service's token."""
    access = Access(tuple(scopes), fulfillment_service)

    async def authorized(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> Principal:
        # `credentials` puts the bearer scheme, with these scopes, on the operation in OpenAPI;
        # the token itself was checked by AuthMiddleware (or is checked here if it did not run).
        return await authorize(request, access, _authenticator(request))

    setattr(authorized, _ACCESS, access)
    return Security(authorized, scopes=list(scopes) or [SERVICE_SCOPE])


def _public() -> None:
    """Marks a route as open to anyone (health, metrics, docs, signed download links)."""


PUBLIC = Depends(_public)


async def caller(request: Request) -> Principal:
    """The verified caller of a route that declared `requires(...)`."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthenticated(NO_TOKEN)
    return principal


Caller = Annotated[Principal, Depends(caller)]


def reach_of(principal: Principal, merchant_scope: str, fulfillment_service: str | None) -> None:
    """A route open to fulfillment services: the merchant's scope reaches every fulfillment
    order, a fulfillment service's token only those at its own locations (403 otherwise)."""
    if principal.may(merchant_scope) or principal.speaks_for(fulfillment_service):
        return
    raise Forbidden(
        f"this needs scope {merchant_scope}; a fulfillment service's token reaches only the fulfillment orders "
        "at the locations it runs",
        [merchant_scope],
    )


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route of the app, in the order the router tries them: the app's own and those
    of the routers it includes (which recent FastAPI keeps nested rather than copied). The
    services include their routers without a prefix, so a route's own path is the one served."""

    def walk(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            included = getattr(route, "original_router", None)  # FastAPI's included router
            if included is not None:
                yield from walk(included.routes)

    return list(walk(app.router.routes))


def access_of(route: BaseRoute) -> Access | None:
    """What a route needs: None when it is public. An API route that declares nothing needs a
    valid token (fail closed); `install` refuses to build such an app."""
    if not isinstance(route, APIRoute):
        return None  # FastAPI's own /docs and /openapi.json
    for dependency in route.dependencies:
        declared = getattr(dependency.dependency, _ACCESS, None)
        if isinstance(declared, Access):
            return declared
        if dependency.dependency is _public:
            return None
    return Access()


def is_declared(route: BaseRoute) -> bool:
    if not isinstance(route, APIRoute):
        return True
    return any(getattr(d.dependency, _ACCESS, None) or d.dependency is _public for d in route.dependencies)


async def authorize(request: Request, access: Access, authenticator: Authenticator) -> Principal:
    """The caller, verified once per request, checked against what the route needs."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(NO_TOKEN)
        principal = await authenticator.principal(token.strip())
        request.state.principal = principal
    access.check(principal)
    return principal


def _authenticator(request: Request) -> Authenticator:
    found = getattr(request.app.state, "authenticator", None)
    if not isinstance(found, Authenticator):
        raise AuthUnavailable("this service has no authenticator")
    return found


class AuthMiddleware:
    """Refuses before anything else runs (the Idempotency-Key middleware, body parsing): the
    route the request is for says what it needs. The caller's `sub` is the actor of what follows."""

    def __init__(self, app: ASGIApp, routes: Sequence[APIRoute], authenticator: Authenticator) -> None:
        self.app = app
        self.routes = routes
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        access = self._access(scope) if scope["type"] == "http" else None
        if access is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await authorize(request, access, self.authenticator)
        except AuthError as refused:
            await auth_error_response(refused)(scope, receive, send)
            return
        with acting_as(principal.subject):
            await self.app(scope, receive, send)

    def _access(self, scope: Scope) -> Access | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return access_of(route)
        return None  # no such route (404) or method (405): the router answers


def install(app: FastAPI, authenticator: Authenticator) -> None:
    """Put the boundary in front of an app whose routes are all included (call it last, so the
    middleware wraps the others) and document it in OpenAPI."""
    routes = api_routes(app)
    undeclared = [f"{sorted(r.methods or ())} {r.path}" for r in routes if not is_declared(r)]
    if undeclared:
        raise AuthConfigError("routes that declare neither requires(...) nor PUBLIC: " + ", ".join(undeclared))
    app.state.authenticator = authenticator
    app.add_middleware(AuthMiddleware, routes=routes, authenticator=authenticator)

    @app.exception_handler(AuthError)
    async def refused(_: Request, exc: AuthError) -> JSONResponse:
        return auth_error_response(exc)

    generate = app.openapi

    def openapi() -> dict[str, JsonValue]:
        """FastAPI documents each operation's scopes; add the fulfillment-service alternative
        (a second security requirement means "or") and mark public operations as open."""
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for route in routes:
            access = access_of(route)
            for method in route.methods or ():
                operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                if access is None:
                    operation["security"] = []
                elif access.fulfillment_service and access.scopes:
                    operation.setdefault("security", []).append({SCHEME_NAME: [SERVICE_SCOPE]})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
