"""Local identity: a signing key and the JWKS the services trust, under `.local/auth/`, and
tokens minted from that key (what an identity provider does in production).

    python -m deploy.auth token --sub NAME --scope SCOPE [--scope SCOPE ...] [--ttl SECONDS]
    python -m deploy.auth rotate
    python -m deploy.auth service-key --service ID
    python -m deploy.auth sign-answer --service ID < answer.json

`make run` creates the key once (kept across restarts) and writes a merchant token with every
merchant scope to `.local/admin-token`. A `fulfillment_service:<id>` scope makes a fulfillment
service's token. `rotate` makes a new signing key and keeps the old public key in the JWKS, so
tokens already handed out stay valid while the services pick the new key up by its kid.
`service-key` gives a fulfillment service a key of its own (trusted under a kid that names it, so
it signs for that service only) and `sign-answer` signs an answer with it, as the service would
before publishing on fulfillment.responses.v1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import rfc8785
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from shared.auth import MERCHANT_SCOPES, SERVICE_SCOPE_PREFIX, SigningKey, algorithm_for, mint_token, sign_answer
from shared.events import CloudEvent
from shared.http import IDENTIFIER_PATTERN

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ISSUER = "urn:fulfillment-platform:local"
LOCAL_AUDIENCE = "fulfillment-platform"
ADMIN_SUBJECT = "local-admin"
ADMIN_TOKEN_TTL_SECONDS = 30 * 24 * 3600

_SERVICE_SCOPE = re.compile(re.escape(SERVICE_SCOPE_PREFIX) + IDENTIFIER_PATTERN.lstrip("^"))


def new_signing_key(algorithm: str = "EdDSA") -> SigningKey:
    """A fresh private key for one of the accepted algorithms."""
    if algorithm == "EdDSA":
        return Ed25519PrivateKey.generate()
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"no key for algorithm {algorithm!r}")


def public_jwk(key: SigningKey, kid: str | None = None) -> dict[str, Any]:
    """The public half as a JWK, with its kid (the RFC 7638 thumbprint unless given) and alg."""
    jwk: dict[str, Any]
    if isinstance(key, Ed25519PrivateKey):
        jwk = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid or thumbprint(jwk), "alg": algorithm_for(key), "use": "sig"}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the key's required members as canonical JSON, base64url."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    digest = hashlib.sha256(rfc8785.dumps({name: jwk[name] for name in required})).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def write_private(path: Path, content: bytes) -> None:
    """Write a secret readable by its owner only (0600), replacing any previous one."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    temporary.replace(path)


@dataclass
class LocalAuth:
    """The local stand-in for an identity provider: one signing key, and a JWKS file that lists
    its public key (and any older ones still trusted)."""

    directory: Path
    issuer: str = LOCAL_ISSUER
    audience: str = LOCAL_AUDIENCE

    @property
    def key_path(self) -> Path:
        return self.directory / "signing-key.pem"

    @property
    def jwks_path(self) -> Path:
        return self.directory / "jwks.json"

    def ensure(self) -> LocalAuth:
        """Create the signing key if there is none (it is kept across restarts) and make sure
        the JWKS lists its public key."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        if not self.key_path.exists():
            self._save_key(new_signing_key())
        key, kid = self.signing_key()
        if kid not in {jwk.get("kid") for jwk in self.trusted()}:
            self.trust(key, kid)
        return self

    def signing_key(self) -> tuple[SigningKey, str]:
        key = self._load_key(self.key_path)
        return key, public_jwk(key)["kid"]

    @staticmethod
    def _load_key(path: Path) -> SigningKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"{path} holds a key of an algorithm the platform does not accept")
        return key

    def trusted(self) -> list[dict[str, Any]]:
        if not self.jwks_path.exists():
            return []
        keys: list[dict[str, Any]] = json.loads(self.jwks_path.read_text()).get("keys", [])
        return keys

    def trust(self, key: SigningKey, kid: str | None = None) -> str:
        """Add a key's public half to the JWKS (the services read it again on an unknown kid)."""
        jwk = public_jwk(key, kid)
        keys = [existing for existing in self.trusted() if existing.get("kid") != jwk["kid"]] + [jwk]
        temporary = self.jwks_path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
        temporary.replace(self.jwks_path)
        return str(jwk["kid"])

    def rotate(self) -> str:
        """A new signing key; the old public key stays trusted. Returns the new kid."""
        key = new_signing_key()
        self._save_key(key)
        return self.trust(key)

    def mint(self, subject: str, scopes: Iterable[str], ttl_seconds: float = 3600) -> str:
        key, kid = self.signing_key()
        return mint_token(
            key, kid, issuer=self.issuer, audience=self.audience, subject=subject, scopes=scopes,
            ttl_seconds=ttl_seconds,
        )  # fmt: skip

    def admin_token(self, ttl_seconds: float = ADMIN_TOKEN_TTL_SECONDS) -> str:
        """A merchant's token with every merchant scope."""
        return self.mint(ADMIN_SUBJECT, MERCHANT_SCOPES, ttl_seconds)

    def service_key(self, service: str) -> tuple[SigningKey, str]:
        """A fulfillment service's own key (made once), trusted under the kid
        `fulfillment_service:<id>:<thumbprint>`: it signs that service's tokens and answers only."""
        if not re.fullmatch(IDENTIFIER_PATTERN, service):
            raise ValueError(f"{service!r} is not a fulfillment service id")
        path = self.directory / "services" / f"{service}.pem"
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            self._save_key(new_signing_key(), path)
        key = self._load_key(path)
        kid = f"{SERVICE_SCOPE_PREFIX}{service}:{public_jwk(key)['kid'][:12]}"
        if kid not in {jwk.get("kid") for jwk in self.trusted()}:
            self.trust(key, kid)
        return key, kid

    def sign_answer(self, event: CloudEvent, service: str) -> CloudEvent:
        """The answer with its proof, signed with the service's own key."""
        key, kid = self.service_key(service)
        return sign_answer(event, key, kid, issuer=self.issuer, audience=self.audience, fulfillment_service=service)

    def env(self) -> dict[str, str]:
        """What the services need to trust this key."""
        return {"AUTH_JWKS_FILE": str(self.jwks_path), "AUTH_ISSUER": self.issuer, "AUTH_AUDIENCE": self.audience}

    def _save_key(self, key: SigningKey, path: Path | None = None) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(path or self.key_path, pem)


def check_scope(scope: str) -> str:
    if scope in MERCHANT_SCOPES or _SERVICE_SCOPE.fullmatch(scope):
        return scope
    raise typer.BadParameter(
        f"{scope!r} is not a scope: use {', '.join(MERCHANT_SCOPES)} or {SERVICE_SCOPE_PREFIX}<id>"
    )


cli = typer.Typer(help="Local identity: tokens signed by the key `make run` keeps under .local/auth/.")
DataDir = Annotated[Path, typer.Option(help="the local stack's data directory")]


@cli.command()
def token(
    sub: Annotated[str, typer.Option(help="who the token is for: recorded as the actor of what it does")],
    scope: Annotated[
        list[str],
        typer.Option(help="a scope to grant; repeat for more", callback=lambda v: [check_scope(s) for s in v]),
    ],
    ttl: Annotated[int, typer.Option(min=1, help="seconds until it expires")] = 3600,
    data_dir: DataDir = ROOT / ".local",
) -> None:
    """Print a JWT for SUB with the given scopes."""
    typer.echo(LocalAuth(data_dir / "auth").ensure().mint(sub, scope, ttl))


@cli.command()
def rotate(data_dir: DataDir = ROOT / ".local") -> None:
    """Sign with a new key from now on; tokens signed with the old one stay valid."""
    kid = LocalAuth(data_dir / "auth").ensure().rotate()
    typer.echo(f"new signing key {kid}; the previous public key stays in the JWKS")


ServiceId = Annotated[str, typer.Option(help="the fulfillment service's id (a location's fulfillment_service)")]


@cli.command("service-key")
def service_key(service: ServiceId, data_dir: DataDir = ROOT / ".local") -> None:
    """Give a fulfillment service a signing key of its own, trusted for that service only."""
    auth = LocalAuth(data_dir / "auth").ensure()
    _, kid = auth.service_key(service)
    typer.echo(f"{kid}: private key in {auth.directory / 'services' / (service + '.pem')}")


@cli.command("sign-answer")
def sign_answer_command(service: ServiceId, data_dir: DataDir = ROOT / ".local") -> None:
    """Read a fulfillment service's answer (a CloudEvent, JSON) on stdin; print it signed."""
    event = CloudEvent.model_validate_json(sys.stdin.read())
    typer.echo(LocalAuth(data_dir / "auth").ensure().sign_answer(event, service).model_dump_json())


if __name__ == "__main__":
    cli()
