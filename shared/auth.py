"""The trust boundary, decided once: who is calling, and what they may do.

HTTP: every route declares what it needs with `requires(...)` (or `PUBLIC`). A bearer JWT is
checked against a JWKS (signature, `iss`, `aud`, expiry with a small leeway; keys picked by `kid`
so they rotate without downtime; RS256, ES256 and EdDSA only) by `AuthMiddleware`, before
anything else runs: a refused request (401 without a valid token, 403 naming the missing scope)
changes nothing, not even an Idempotency-Key record. The token's `sub` becomes the `actor` of
every event the call causes (`shared.events.acting_as`).

Scopes (OAuth2 `scope` claim, space-separated): `orders:read|write`, `inventory:read|write`,
`fulfillment:read|write`, `settings:write`, and `fulfillment_service:<id>` for a third-party
fulfillment service, which reaches only the fulfillment orders at its own locations. A merchant
scope never makes a caller a fulfillment service.

Kafka: a fulfillment service's answer on fulfillment.responses.v1 carries a JWT signed with a key
of the same JWKS (`sign_answer`), bound to that one message by its id, type, subject and a
SHA-256 of its data (RFC 8785 canonical JSON). Consumers cannot see a Kafka producer's principal,
so the proof travels in the message: `Authenticator.verify_answer` checks it before the answer is
applied, and an answer without a valid one is dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKError, PyJWKSetError
from starlette.routing import BaseRoute, Match

from shared.events import ANSWER_PROOF, CloudEvent, acting_as
from shared.http import ApiError, error_body
from shared.rules import RuleViolation
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256", "EdDSA")
"""Asymmetric only: `none` and HS* (a shared secret any verifier could sign with) are refused."""

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

SCHEME_NAME = "bearerAuth"
MAX_SUBJECT_LENGTH = 256
ANSWER_MAX_LIFETIME_SECONDS = 900
"""A fulfillment service's answer proof lives at most this long (exp - iat)."""
ANSWER_PROOF_TYPE = "answer+jwt"
"""The JWT `typ` of an answer proof: a proof is not an access token, and an access token is not a
proof (whoever reads the topic must not be able to call the API with a copied proof)."""

SigningKey = Ed25519PrivateKey | EllipticCurvePrivateKey | RSAPrivateKey

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AuthConfigError(ValueError):
    """The service was not told how to check tokens: it refuses to start."""


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


# --- refusals ---------------------------------------------------------------------------


class AuthError(ApiError):
    """A refusal at the trust boundary; `challenge` is the WWW-Authenticate header (RFC 6750)."""

    challenge = "Bearer"


class Unauthenticated(AuthError):
    def __init__(self, reason: str) -> None:
        super().__init__(401, "unauthenticated", f"a valid bearer token is needed: {reason}")
        self.reason = reason
        self.challenge = 'Bearer error="invalid_token"' if reason != NO_TOKEN else "Bearer"


NO_TOKEN = "none was sent (Authorization: Bearer <JWT>)"


class Forbidden(AuthError):
    def __init__(self, message: str, required: Sequence[str]) -> None:
        super().__init__(403, "forbidden", message, {"required_scopes": list(required)})
        self.challenge = f'Bearer error="insufficient_scope", scope="{" ".join(required)}"'


class AuthUnavailable(AuthError):
    """The keys could not be fetched: not the caller's fault (503), and nothing is let through."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, "auth_unavailable", f"tokens cannot be checked right now: {reason}")


def auth_error_response(error: AuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": error.challenge} if error.status in (401, 403) else {}
    return JSONResponse(error_body(error.code, error.message, error.details), status_code=error.status, headers=headers)


class UnprovenAnswer(RuleViolation):
    """A fulfillment service's Kafka answer that is not provably the service's own: it is
    dead-lettered at once with this reason, and nothing is applied."""


# --- verifying tokens -------------------------------------------------------------------


class _JwksFile(PyJWKClient):
    """A JWKS kept in a file, with PyJWKClient's caching and refresh cooldown: the file is read
    again when the cache lapses or, at most once per cooldown, when a token names an unknown kid."""

    def __init__(self, path: Path, lifespan: float, cooldown: float) -> None:
        super().__init__("https://jwks-file.invalid/", lifespan=lifespan, cooldown_duration=cooldown)
        self.path = path

    def fetch_data(self) -> Any:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise PyJWKClientConnectionError(f"cannot read the JWKS file {self.path}: {exc}") from exc
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(self._as_jwk_set_payload(data))
        return data


class Authenticator:
    """Checks bearer tokens and answer proofs against the JWKS the settings name."""

    def __init__(self, settings: ServiceSettings) -> None:
        url, file = settings.auth_jwks_url, settings.auth_jwks_file
        if bool(url) == bool(file):
            raise AuthConfigError("set exactly one of AUTH_JWKS_URL (an identity provider) or AUTH_JWKS_FILE")
        if not settings.auth_issuer or not settings.auth_audience:
            raise AuthConfigError("AUTH_ISSUER and AUTH_AUDIENCE are required to check tokens")
        self.issuer = settings.auth_issuer
        self.audience = settings.auth_audience
        self.leeway = settings.auth_leeway_seconds
        self._last_good: dict[str, PyJWK] = {}
        # Answers older than what an aggregate's inbox remembers (less a day) are refused.
        self.answer_max_age = max(settings.inbox_retention_seconds - 86_400, 3_600)
        lifespan, cooldown = settings.auth_jwks_cache_seconds, settings.auth_jwks_refresh_cooldown_seconds
        self.keys: PyJWKClient = (
            PyJWKClient(url, lifespan=lifespan, cooldown_duration=cooldown, timeout=5)
            if url
            else _JwksFile(Path(file or ""), lifespan, cooldown)
        )

    async def principal(self, token: str) -> Principal:
        """The verified caller of a bearer token; raises Unauthenticated with the reason."""
        claims = await self.claims(token)
        return _principal(claims)

    async def claims(self, token: str, *, answer_proof: bool = False) -> dict[str, Any]:
        """The verified claims of an access token, or (`answer_proof`) of a fulfillment service's
        proof of an answer, which is judged by when it was made, not by its expiry."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the token is not a JWT") from None
        if (header.get("typ") == ANSWER_PROOF_TYPE) != answer_proof:
            kind = "an answer's proof" if answer_proof else "an access token"
            raise Unauthenticated(f"the token is not {kind} (typ {str(header.get('typ'))[:20]!r})")
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthenticated(f"algorithm {str(algorithm)[:20]!r} is not accepted (only {', '.join(ALGORITHMS)})")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token does not name its signing key (kid)")
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_exp": not answer_proof},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token was issued by another issuer") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is meant for another audience") from None
        except jwt.MissingRequiredClaimError as missing:
            raise Unauthenticated(f"the token has no {missing.claim!r} claim") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the token's signature or claims are not valid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise Unauthenticated(f"the token's sub must be a string of 1-{MAX_SUBJECT_LENGTH} characters")
        if not isinstance(claims.get("scope", ""), str):
            raise Unauthenticated("the token's scope claim must be a space-separated string")
        _check_key_binding(kid, _scopes(claims), subject)
        return claims

    async def _key(self, kid: str) -> PyJWK:
        cached = self._cached_key(kid)
        if cached is not None:
            self._last_good[kid] = cached
            return cached
        try:
            # May fetch the key set (an unknown kid: a rotation), which blocks: off the event loop.
            key = await asyncio.to_thread(self.keys.get_signing_key, kid)
        except (PyJWKClientConnectionError, PyJWKSetError) as unreachable:
            if kid in self._last_good:
                # The identity provider is away: keep trusting the keys it last published (a key
                # it has since withdrawn stays trusted until it answers again), rather than
                # refusing every caller.
                log.warning("the JWKS could not be fetched (%s); using the keys fetched last", unreachable)
                return self._last_good[kid]
            log.warning("the JWKS could not be fetched or read: %s", unreachable)
            raise AuthUnavailable("the signing keys could not be fetched") from None
        except (PyJWKClientError, PyJWKError):
            raise Unauthenticated("the token is signed with a key this service does not trust") from None
        self._last_good[kid] = key
        return key

    def _cached_key(self, kid: str) -> PyJWK | None:
        cache = self.keys.jwk_set_cache
        key_set = cache.get() if cache is not None else None
        if key_set is None:
            return None
        return next((k for k in key_set.keys if k.key_id == kid and k.public_key_use in ("sig", None)), None)

    async def verify_answer(self, event: CloudEvent, fulfillment_service: str) -> Principal:
        """The fulfillment service that provably made this answer; raises UnprovenAnswer (the
        message is dead-lettered) unless its proof is a valid token of `fulfillment_service`
        made for this very message.

        The proof is judged as of when it was made (`iat`, within a lifetime of at most
        ANSWER_MAX_LIFETIME_SECONDS), not when it is read: a consumer catching up after an outage
        must not dead-letter good answers, and a proof bound to one message id cannot be used
        for another (a replay of the same message is absorbed by the inbox)."""
        token = (event.model_extra or {}).get(ANSWER_PROOF)
        if not isinstance(token, str) or not token:
            raise UnprovenAnswer(f"the answer carries no {ANSWER_PROOF} attribute: it cannot be shown to come from "
                                 f"fulfillment service {fulfillment_service!r}")  # fmt: skip
        try:
            claims = await self.claims(token, answer_proof=True)
        except Unauthenticated as refused:
            raise UnprovenAnswer(f"its {ANSWER_PROOF} is not valid: {refused.reason}") from None
        except AuthUnavailable as unavailable:
            raise ConnectionError(unavailable.message) from None  # ours, not the message's: redelivered
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise UnprovenAnswer(f"its {ANSWER_PROOF} needs numeric iat and exp claims")
        if issued > time.time() + self.leeway:
            raise UnprovenAnswer(f"its {ANSWER_PROOF} was issued in the future")
        if issued < time.time() - self.answer_max_age:
            # Older than what the inbox remembers: it could no longer be told from a replay.
            raise UnprovenAnswer(f"its {ANSWER_PROOF} is older than {self.answer_max_age:.0f} s")
        if not 0 < expires - issued <= ANSWER_MAX_LIFETIME_SECONDS:
            raise UnprovenAnswer(f"its {ANSWER_PROOF} must live at most {ANSWER_MAX_LIFETIME_SECONDS} s (exp - iat)")
        principal = _principal(claims)
        if not principal.may(SERVICE_SCOPE_PREFIX + fulfillment_service):
            raise UnprovenAnswer(
                f"its {ANSWER_PROOF} does not speak for fulfillment service {fulfillment_service!r} "
                f"(it needs scope {SERVICE_SCOPE_PREFIX}{fulfillment_service}; a merchant's scopes do not answer "
                "for a fulfillment service)"
            )
        for name, value in answer_claims(event).items():
            if claims.get(name) != value:
                raise UnprovenAnswer(f"its {ANSWER_PROOF} was made for another message ({name} differs)")
        return principal


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(claims.get("scope", "")).split())


def _principal(claims: dict[str, Any]) -> Principal:
    return Principal(subject=str(claims["sub"]), scopes=_scopes(claims))


def _check_key_binding(kid: str, scopes: frozenset[str], subject: str) -> None:
    """A key registered under a kid that names a fulfillment service (`fulfillment_service:<id>`,
    optionally `:<version>`) is that service's own: it signs only that service's tokens, as that
    service, so adding a logistics partner's key to the JWKS never lets it mint a merchant's token
    or act under another name."""
    if not kid.startswith(SERVICE_SCOPE_PREFIX):
        return
    owner = kid.removeprefix(SERVICE_SCOPE_PREFIX).split(":", 1)[0]
    if scopes != {SERVICE_SCOPE_PREFIX + owner} or subject != owner:
        raise Unauthenticated(f"key {kid[:80]!r} signs only for fulfillment service {owner!r}, as {owner!r}")


# --- minting (the local stack, the tests, a fulfillment service signing its answers) ------


def algorithm_for(key: SigningKey) -> str:
    if isinstance(key, Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, EllipticCurvePrivateKey):
        return "ES256"
    return "RS256"


def mint_token(
    key: SigningKey,
    kid: str,
    *,
    issuer: str,
    audience: str,
    subject: str,
    scopes: Iterable[str],
    ttl_seconds: float,
    claims: dict[str, Any] | None = None,
    typ: str = "JWT",
) -> str:
    """A signed JWT (what an identity provider issues); `scopes` go in the `scope` claim."""
    now = int(time.time())
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + int(ttl_seconds),
        "jti": uuid.uuid4().hex,
        **(claims or {}),
    }
    return jwt.encode(payload, key, algorithm=algorithm_for(key), headers={"kid": kid, "typ": typ})


def answer_claims(event: CloudEvent) -> dict[str, str]:
    """What binds an answer's proof to that one message."""
    return {
        "event_id": event.id,
        "event_type": event.type,
        "event_subject": event.subject,
        "data_sha256": hashlib.sha256(rfc8785.dumps(event.data)).hexdigest(),
    }


def sign_answer(
    event: CloudEvent,
    key: SigningKey,
    kid: str,
    *,
    issuer: str,
    audience: str,
    fulfillment_service: str,
    ttl_seconds: float = 300,
) -> CloudEvent:
    """The answer with its proof (the `authtoken` attribute), as a fulfillment service sends it."""
    token = mint_token(
        key, kid, issuer=issuer, audience=audience, subject=fulfillment_service,
        scopes=[SERVICE_SCOPE_PREFIX + fulfillment_service], ttl_seconds=ttl_seconds, claims=answer_claims(event),
        typ=ANSWER_PROOF_TYPE,
    )  # fmt: skip
    return CloudEvent.model_validate({**event.model_dump(mode="json"), ANSWER_PROOF: token})


# --- what routes need ---------------------------------------------------------------------


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

    def openapi() -> dict[str, Any]:
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
