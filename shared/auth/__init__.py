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

Where each part lives: `principal` (scopes, the verified caller), `tokens` (checking tokens
against the JWKS: `Authenticator`), `answers` (a fulfillment service's answer proofs),
`minting` (signing tokens, as an identity provider does), `access` (routes: `requires`,
`PUBLIC`, the middleware, `install`), `errors` (the refusals). Import from `shared.auth`.
"""

from shared.auth.access import (
    BEARER,
    PUBLIC,
    SCHEME_NAME,
    Access,
    ASGIApp,
    AuthMiddleware,
    Caller,
    Message,
    Receive,
    Scope,
    Send,
    access_of,
    api_routes,
    authorize,
    caller,
    install,
    is_declared,
    reach_of,
    requires,
)
from shared.auth.answers import ANSWER_MAX_LIFETIME_SECONDS, ANSWER_PROOF_TYPE, answer_claims, sign_answer
from shared.auth.errors import (
    NO_TOKEN,
    AuthConfigError,
    AuthError,
    AuthUnavailable,
    Forbidden,
    Unauthenticated,
    UnprovenAnswer,
    auth_error_response,
)
from shared.auth.minting import SigningKey, algorithm_for, mint_token
from shared.auth.principal import MERCHANT_SCOPES, SERVICE_SCOPE, SERVICE_SCOPE_PREFIX, Principal
from shared.auth.tokens import ALGORITHMS, MAX_SUBJECT_LENGTH, Authenticator

__all__ = [
    "ALGORITHMS",
    "ANSWER_MAX_LIFETIME_SECONDS",
    "ANSWER_PROOF_TYPE",
    "BEARER",
    "MAX_SUBJECT_LENGTH",
    "MERCHANT_SCOPES",
    "NO_TOKEN",
    "PUBLIC",
    "SCHEME_NAME",
    "SERVICE_SCOPE",
    "SERVICE_SCOPE_PREFIX",
    "ASGIApp",
    "Access",
    "AuthConfigError",
    "AuthError",
    "AuthMiddleware",
    "AuthUnavailable",
    "Authenticator",
    "Caller",
    "Forbidden",
    "Message",
    "Principal",
    "Receive",
    "Scope",
    "Send",
    "SigningKey",
    "Unauthenticated",
    "UnprovenAnswer",
    "access_of",
    "algorithm_for",
    "answer_claims",
    "api_routes",
    "auth_error_response",
    "authorize",
    "caller",
    "install",
    "is_declared",
    "mint_token",
    "reach_of",
    "requires",
    "sign_answer",
]
