"""Verifying tokens: a bearer JWT or an answer's proof, checked against the JWKS the settings name.

Signature, `iss`, `aud`, expiry with a small leeway; keys picked by `kid` so they rotate without
downtime (the keys fetched last keep serving while the identity provider is away); RS256, ES256
and EdDSA only. A key whose kid names a fulfillment service signs only for that service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKError, PyJWKSetError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, StrictStr, ValidationError

from shared.auth.answers import ANSWER_MAX_LIFETIME_SECONDS, ANSWER_PROOF_TYPE, answer_claims
from shared.auth.errors import AuthConfigError, AuthUnavailable, Unauthenticated, UnprovenAnswer
from shared.auth.principal import SERVICE_SCOPE_PREFIX, Principal
from shared.events import ANSWER_PROOF, CloudEvent
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256", "EdDSA")
"""Asymmetric only: `none` and HS* (a shared secret any verifier could sign with) are refused."""
MAX_SUBJECT_LENGTH = 256


def _number_or_none(value: object) -> object:
    """A time claim that is not a JSON number reads as absent (an answer's proof needs both)."""
    return value if isinstance(value, int | float) else None


_REFUSED_CLAIM = {
    "sub": f"the token's sub must be a string of 1-{MAX_SUBJECT_LENGTH} characters",
    "scope": "the token's scope claim must be a space-separated string",
}
"""Why a token is refused when a claim Claims reads is not what it says, the first that applies."""

TimeClaim = Annotated[int | float | None, BeforeValidator(_number_or_none)]


class Claims(BaseModel):
    """The claims the platform reads from a token PyJWT has verified (signature, `iss`, `aud`,
    `exp`, `nbf`), validated once; any other claim is ignored."""

    model_config = ConfigDict(frozen=True)

    sub: StrictStr = Field(min_length=1, max_length=MAX_SUBJECT_LENGTH)
    scope: StrictStr = ""
    """Space-separated scopes."""
    iat: TimeClaim = None
    exp: TimeClaim = None
    # An answer's proof: what binds it to one message (shared.auth.answers.answer_claims), as sent.
    event_id: JsonValue = None
    event_type: JsonValue = None
    event_subject: JsonValue = None
    data_sha256: JsonValue = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    @property
    def principal(self) -> Principal:
        return Principal(subject=self.sub, scopes=self.scopes)

    def binding(self) -> dict[str, JsonValue]:
        """The message an answer's proof was made for, to compare with `answer_claims` of the answer."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "event_subject": self.event_subject,
            "data_sha256": self.data_sha256,
        }


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
        return claims.principal

    async def claims(self, token: str, *, answer_proof: bool = False) -> Claims:
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
            decoded = jwt.decode(
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
        try:
            claims = Claims.model_validate(decoded)
        except ValidationError as invalid:
            refused = {str(error["loc"][0]) for error in invalid.errors() if error["loc"]}
            reason = next((_REFUSED_CLAIM[name] for name in _REFUSED_CLAIM if name in refused), None)
            raise Unauthenticated(reason or "the token's signature or claims are not valid") from None
        _check_key_binding(kid, claims.scopes, claims.sub)
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
        issued, expires = claims.iat, claims.exp
        if issued is None or expires is None:
            raise UnprovenAnswer(f"its {ANSWER_PROOF} needs numeric iat and exp claims")
        if issued > time.time() + self.leeway:
            raise UnprovenAnswer(f"its {ANSWER_PROOF} was issued in the future")
        if issued < time.time() - self.answer_max_age:
            # Older than what the inbox remembers: it could no longer be told from a replay.
            raise UnprovenAnswer(f"its {ANSWER_PROOF} is older than {self.answer_max_age:.0f} s")
        if not 0 < expires - issued <= ANSWER_MAX_LIFETIME_SECONDS:
            raise UnprovenAnswer(f"its {ANSWER_PROOF} must live at most {ANSWER_MAX_LIFETIME_SECONDS} s (exp - iat)")
        principal = claims.principal
        if not principal.may(SERVICE_SCOPE_PREFIX + fulfillment_service):
            raise UnprovenAnswer(
                f"its {ANSWER_PROOF} does not speak for fulfillment service {fulfillment_service!r} "
                f"(it needs scope {SERVICE_SCOPE_PREFIX}{fulfillment_service}; a merchant's scopes do not answer "
                "for a fulfillment service)"
            )
        proven = claims.binding()
        for name, value in answer_claims(event).items():
            if proven.get(name) != value:
                raise UnprovenAnswer(f"its {ANSWER_PROOF} was made for another message ({name} differs)")
        return principal


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
