"""The refusals at the trust boundary, each with its HTTP status and (RFC 6750) challenge.

Apart because the token checks raise them and the HTTP side turns them into answers; an
answer on Kafka without a valid proof is a rule violation instead (dead-lettered, not 401).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.responses import JSONResponse

from shared.http import ApiError, error_body
from shared.rules import RuleViolation


class AuthConfigError(ValueError):
    """The service was not told how to check tokens: it refuses to start."""


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
