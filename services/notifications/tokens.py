"""Signed download links: what a buyer's download URL carries and how it is checked.

A token is `base64url(json claims) + "." + base64url(HMAC-SHA256(secret, first part))`.
The claims bind the link to one order line and one asset (by the SHA-256 of its URL, so
an expired or forwarded link does not reveal where the file lives), say when it expires
and how many downloads it allows. Pure code: the caller passes the clock.

The signature is checked before anything in the claims is believed, so a link that was
altered is refused as tampered even if it also looks expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

TOKEN_VERSION = 1
MIN_SECRET_BYTES = 16


class InvalidDownloadToken(ValueError):
    """The link was altered, truncated or not signed with this shop's secret."""


class ExpiredDownloadToken(ValueError):
    """A genuine link whose time is up."""

    def __init__(self, claims: DownloadClaims) -> None:
        super().__init__("download link expired")
        self.claims = claims


@dataclass(frozen=True)
class DownloadClaims:
    """What a genuine token says. `max` is the download cap, None for no cap."""

    jti: str  # the token's id: the key of its download counter
    order_id: str
    line_item_id: str
    asset: str  # asset_digest of the asset URL
    exp: int  # unix seconds
    max: int | None
    v: int = TOKEN_VERSION

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, UTC)


def asset_digest(asset_url: str) -> str:
    """128 bits of SHA-256: enough to bind a link to its asset without revealing the URL."""
    return hashlib.sha256(asset_url.encode()).hexdigest()[:32]


def token_id(notification_id: str, line_item_id: str) -> str:
    """One token per download-links email and line: a resent email carries the same link."""
    return hashlib.sha256(f"{notification_id}\x00{line_item_id}".encode()).hexdigest()[:32]


# Claims travel under one-letter names: the link stays short enough for a plain-text email.
_SHORT_NAMES = {"v": "v", "j": "jti", "o": "order_id", "l": "line_item_id", "a": "asset", "e": "exp", "m": "max"}


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DownloadTokens:
    """Signs and verifies download tokens with the shop's DOWNLOAD_LINK_SECRET."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the download link secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def _signature(self, body: str) -> bytes:
        return hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest()

    def sign(self, claims: DownloadClaims) -> str:
        fields = asdict(claims)
        short = {key: fields[name] for key, name in _SHORT_NAMES.items()}
        body = _b64encode(json.dumps(short, separators=(",", ":")).encode())
        return f"{body}.{_b64encode(self._signature(body))}"

    def verify(self, token: str, now: datetime) -> DownloadClaims:
        """The claims of a genuine, unexpired token; InvalidDownloadToken or ExpiredDownloadToken otherwise."""
        body, dot, signature = token.partition(".")
        if not dot or not body or not signature or not token.isascii():
            raise InvalidDownloadToken("not a download token")
        # Compared as canonical text: base64 decoders ignore some trailing bits, so
        # comparing decoded bytes would accept a few altered signatures.
        if not hmac.compare_digest(signature, _b64encode(self._signature(body))):
            raise InvalidDownloadToken("the signature does not match")
        claims = _claims(body)
        if now.timestamp() >= claims.exp:
            raise ExpiredDownloadToken(claims)
        return claims


def _claims(body: str) -> DownloadClaims:
    """Claims of a body whose signature matched: only a key rotation gone wrong makes it unreadable."""
    try:
        raw: Any = json.loads(_b64decode(body))
        if not isinstance(raw, dict) or raw.get("v") != TOKEN_VERSION:
            raise InvalidDownloadToken("unsupported token version")
        limit = raw["m"]
        return DownloadClaims(
            jti=str(raw["j"]),
            order_id=str(raw["o"]),
            line_item_id=str(raw["l"]),
            asset=str(raw["a"]),
            exp=int(raw["e"]),
            max=None if limit is None else int(limit),
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidDownloadToken("the claims are not readable") from None
