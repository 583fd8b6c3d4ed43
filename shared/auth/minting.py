"""Minting signed JWTs, as an identity provider does: for the local stack, the tests and a
fulfillment service signing its answers. Nothing here verifies anything (shared.auth.tokens does).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import JsonValue

SigningKey = Ed25519PrivateKey | EllipticCurvePrivateKey | RSAPrivateKey


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
    claims: Mapping[str, JsonValue] | None = None,
    typ: str = "JWT",
) -> str:
    """A signed JWT (what an identity provider issues); `scopes` go in the `scope` claim."""
    now = int(time.time())
    payload: dict[str, JsonValue] = {
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
