"""Tokens and answer proofs checked against a JWKS file, without a stack: what is accepted and
what is refused, and why (issue 6, "Identity and access")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from deploy.auth import LocalAuth, new_signing_key
from shared.auth import (
    ANSWER_MAX_LIFETIME_SECONDS,
    ANSWER_PROOF_TYPE,
    MERCHANT_SCOPES,
    Access,
    AuthConfigError,
    Authenticator,
    AuthUnavailable,
    Forbidden,
    Principal,
    Unauthenticated,
    UnprovenAnswer,
    algorithm_for,
    answer_claims,
    mint_token,
    sign_answer,
)
from shared.events import ANSWER_PROOF, CloudEvent
from shared.settings import ServiceSettings


@pytest.fixture
def local(tmp_path: Path) -> LocalAuth:
    return LocalAuth(tmp_path / "auth").ensure()


def authenticator(local: LocalAuth, **settings: Any) -> Authenticator:
    env = {name.lower(): value for name, value in local.env().items()}
    return Authenticator(ServiceSettings(**{**env, "auth_jwks_refresh_cooldown_seconds": 0, **settings}))


def claims_token(local: LocalAuth, **claims: Any) -> str:
    """A token signed with the local key, with these claims instead of the usual ones."""
    key, kid = local.signing_key()
    now = int(time.time())
    payload = {"iss": local.issuer, "aud": local.audience, "sub": "alice", "scope": "orders:read",
               "iat": now, "exp": now + 60, **claims}  # fmt: skip
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm="EdDSA", headers={"kid": kid})


def hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token made by hand (PyJWT itself refuses to use a public key as an HMAC secret)."""

    def part(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


async def refused(auth: Authenticator, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await auth.principal(token)
    assert caught.value.status == 401 and caught.value.code == "unauthenticated"
    return caught.value.reason


async def test_a_token_from_the_jwks_key_gives_its_subject_and_scopes(local: LocalAuth) -> None:
    principal = await authenticator(local).principal(local.mint("alice", ["orders:read", "fulfillment_service:acme"]))
    assert principal == Principal("alice", frozenset({"orders:read", "fulfillment_service:acme"}))
    assert principal.fulfillment_services == {"acme"}


async def test_a_token_signed_by_an_unknown_key_is_refused(local: LocalAuth) -> None:
    stranger = new_signing_key()
    token = mint_token(stranger, "not-in-the-jwks", issuer=local.issuer, audience=local.audience, subject="mallory",
                       scopes=MERCHANT_SCOPES, ttl_seconds=60)  # fmt: skip
    assert "does not trust" in await refused(authenticator(local), token)


async def test_a_token_with_a_known_kid_but_signed_by_another_key_is_refused(local: LocalAuth) -> None:
    _, kid = local.signing_key()
    token = mint_token(new_signing_key(), kid, issuer=local.issuer, audience=local.audience, subject="mallory",
                       scopes=MERCHANT_SCOPES, ttl_seconds=60)  # fmt: skip
    assert "signature" in await refused(authenticator(local), token)


async def test_an_expired_token_is_refused_beyond_the_clock_skew(local: LocalAuth) -> None:
    now = int(time.time())
    auth = authenticator(local, auth_leeway_seconds=30)
    assert await refused(auth, claims_token(local, iat=now - 600, exp=now - 60)) == "the token has expired"
    assert (await auth.principal(claims_token(local, iat=now - 600, exp=now - 10))).subject == "alice"  # skew


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example/"}, "the token was issued by another issuer"),
        ({"aud": "another-platform"}, "the token is meant for another audience"),
        ({"exp": None}, "the token has no 'exp' claim"),
        ({"sub": None}, "the token has no 'sub' claim"),
        ({"sub": ""}, "the token's sub must be a string of 1-256 characters"),
        ({"scope": ["orders:read"]}, "the token's scope claim must be a space-separated string"),
        ({"nbf": int(time.time()) + 86_400}, "the token is not valid yet"),  # a day: parameters are made at collection
    ],
)
async def test_a_token_with_the_wrong_claims_is_refused(local: LocalAuth, claims: dict[str, Any], reason: str) -> None:
    assert await refused(authenticator(local), claims_token(local, **claims)) == reason


async def test_alg_none_and_hs256_are_refused(local: LocalAuth) -> None:
    """Asymmetric algorithms only: `none` and a shared secret (even the public key used as one)."""
    _, kid = local.signing_key()
    claims = {"iss": local.issuer, "aud": local.audience, "sub": "mallory", "scope": " ".join(MERCHANT_SCOPES),
              "exp": int(time.time()) + 60}  # fmt: skip
    auth = authenticator(local)
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": kid})  # PyJWT takes "" as no key
    assert "algorithm 'none' is not accepted" in await refused(auth, unsigned)
    public_key_as_secret = json.loads(local.jwks_path.read_text())["keys"][0]["x"].encode()
    assert "algorithm 'HS256' is not accepted" in await refused(auth, hs256(claims, public_key_as_secret, kid))
    assert "not a JWT" in await refused(auth, "not.a.token")


async def test_rotating_to_a_second_key_keeps_both_working(local: LocalAuth) -> None:
    """Keys are picked by kid: a key added to the JWKS while the service runs is found at its
    first token (an unknown kid fetches the key set again), and the old key's tokens stay valid."""
    auth = authenticator(local)
    before = local.mint("alice", ["orders:read"])
    assert (await auth.principal(before)).subject == "alice"
    new_kid = local.rotate()
    after = local.mint("bob", ["orders:write"])
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert (await auth.principal(after)).subject == "bob"
    assert (await auth.principal(before)).subject == "alice"
    for algorithm in ("ES256", "RS256"):  # the other accepted algorithms, each under its own kid
        key = new_signing_key(algorithm)
        kid = local.trust(key)
        token = mint_token(key, kid, issuer=local.issuer, audience=local.audience, subject=algorithm,
                           scopes=["orders:read"], ttl_seconds=60)  # fmt: skip
        assert (await auth.principal(token)).subject == algorithm


async def test_an_unknown_kid_refetches_the_key_set_at_most_once_per_cooldown(local: LocalAuth) -> None:
    auth = authenticator(local, auth_jwks_refresh_cooldown_seconds=3600)
    await auth.principal(local.mint("alice", ["orders:read"]))
    for _ in range(3):  # unknown kids: one fetch, then refused without reading the key set again
        stranger = mint_token(new_signing_key(), uuid.uuid4().hex, issuer=local.issuer, audience=local.audience,
                              subject="mallory", scopes=[], ttl_seconds=60)  # fmt: skip
        assert "does not trust" in await refused(auth, stranger)
    local.rotate()
    assert "does not trust" in await refused(auth, local.mint("bob", ["orders:read"]))  # still cooling down


async def test_a_fulfillment_service_key_signs_only_for_its_own_service(local: LocalAuth) -> None:
    """A logistics partner's key in the JWKS never mints a merchant's token, nor another service's."""
    key, kid = local.service_key("acme-3pl")
    auth = authenticator(local)

    def signed(*scopes: str) -> str:
        return mint_token(key, kid, issuer=local.issuer, audience=local.audience, subject="acme-3pl",
                          scopes=scopes, ttl_seconds=60)  # fmt: skip

    assert (await auth.principal(signed("fulfillment_service:acme-3pl"))).fulfillment_services == {"acme-3pl"}
    for scopes in (
        MERCHANT_SCOPES,
        ("fulfillment_service:other-3pl",),
        ("fulfillment_service:acme-3pl", "orders:read"),
    ):
        assert "signs only for fulfillment service 'acme-3pl'" in await refused(auth, signed(*scopes))


async def test_keys_that_cannot_be_read_are_a_503_not_a_401(local: LocalAuth) -> None:
    auth = authenticator(local)
    token = local.mint("alice", ["orders:read"])
    local.jwks_path.write_text("{not json")
    with pytest.raises(AuthUnavailable) as caught:
        await auth.principal(token)
    assert caught.value.status == 503


def test_a_service_without_jwks_issuer_or_audience_refuses_to_start(local: LocalAuth) -> None:
    with pytest.raises(AuthConfigError, match="AUTH_JWKS_URL"):
        Authenticator(ServiceSettings())
    with pytest.raises(AuthConfigError, match="AUTH_ISSUER and AUTH_AUDIENCE"):
        Authenticator(ServiceSettings(auth_jwks_file=str(local.jwks_path)))
    with pytest.raises(AuthConfigError, match="exactly one"):
        Authenticator(ServiceSettings(auth_jwks_file="x", auth_jwks_url="https://idp.example/jwks", auth_issuer="i",
                                      auth_audience="a"))  # fmt: skip


def test_a_route_names_the_scope_that_is_missing() -> None:
    merchant = Principal("alice", frozenset(MERCHANT_SCOPES) - {"settings:write"})
    service = Principal("acme-3pl", frozenset({"fulfillment_service:acme-3pl"}))
    with pytest.raises(Forbidden) as caught:
        Access(("settings:write",)).check(merchant)
    assert (caught.value.status, caught.value.message) == (403, "this needs scope settings:write")
    assert caught.value.details == {"required_scopes": ["settings:write"]}
    Access(("fulfillment:read",), fulfillment_service=True).check(service)  # the route limits its reach
    with pytest.raises(Forbidden):
        Access(("fulfillment:write",)).check(service)
    with pytest.raises(Forbidden, match=r"fulfillment_service:\{id\}"):
        Access((), fulfillment_service=True).check(merchant)  # a merchant never answers as a service


# --- a fulfillment service's answers on Kafka -----------------------------------------------


def answer(service: str = "acme-3pl", **data: Any) -> CloudEvent:
    return CloudEvent(
        source=service, type="fulfillment_service.shipped", subject="order-1",
        data={"fulfillment_order_id": "fo-1", "fulfillment_service": service, **data},
    )  # fmt: skip


def signed(local: LocalAuth, event: CloudEvent, service: str = "acme-3pl", **options: Any) -> CloudEvent:
    key, kid = local.service_key(service)
    return sign_answer(event, key, kid, issuer=local.issuer, audience=local.audience, fulfillment_service=service,
                       **options)  # fmt: skip


async def unproven(auth: Authenticator, event: CloudEvent, service: str = "acme-3pl") -> str:
    with pytest.raises(UnprovenAnswer) as caught:
        await auth.verify_answer(event, service)
    return str(caught.value)


async def test_a_signed_answer_is_the_service_s_own(local: LocalAuth) -> None:
    event = signed(local, answer(tracking={"numbers": ["ACME-1"], "company": "Acme", "urls": []}))
    on_the_wire = CloudEvent.model_validate_json(event.to_bytes())  # as the consumer parses it
    assert (await authenticator(local).verify_answer(on_the_wire, "acme-3pl")).subject == "acme-3pl"


async def test_answers_that_are_not_provably_the_service_s_own_are_refused(local: LocalAuth) -> None:
    auth = authenticator(local)
    assert "carries no authtoken" in await unproven(auth, answer())
    # another service's valid proof, for an answer in acme's name
    assert "does not speak for fulfillment service 'acme-3pl'" in await unproven(
        auth, signed(local, answer(), service="other-3pl")
    )
    # a merchant's token, with every merchant scope, signed by the platform's own key
    merchant = CloudEvent.model_validate({**answer().model_dump(mode="json"),
                                          ANSWER_PROOF: local.mint("alice", MERCHANT_SCOPES, 60)})  # fmt: skip
    assert "the token is not an answer's proof" in await unproven(auth, merchant)
    # a valid proof moved to another message, or the message changed after signing
    genuine = signed(local, answer(tracking={"numbers": ["ACME-1"]}))
    tampered = CloudEvent.model_validate(
        {**genuine.model_dump(mode="json"), "data": {**genuine.data, "tracking": {"numbers": ["FAKE-1"]}}}
    )
    assert "made for another message (data_sha256 differs)" in await unproven(auth, tampered)
    proof = (genuine.model_extra or {})[ANSWER_PROOF]
    moved = CloudEvent.model_validate({**answer().model_dump(mode="json"), ANSWER_PROOF: proof})
    assert "made for another message (event_id differs)" in await unproven(auth, moved)
    retyped = CloudEvent.model_validate(
        {**genuine.model_dump(mode="json"), "type": "fulfillment_service.cannot_complete"}
    )
    assert "(event_type differs)" in await unproven(auth, retyped)


async def test_an_answer_proof_must_be_short_lived_and_not_from_the_future(local: LocalAuth) -> None:
    auth = authenticator(local)
    assert f"at most {ANSWER_MAX_LIFETIME_SECONDS} s" in await unproven(
        auth, signed(local, answer(), ttl_seconds=86400)
    )
    key, kid = local.service_key("acme-3pl")
    event = answer()
    later = int(time.time()) + 3600
    token = jwt.encode({"iss": local.issuer, "aud": local.audience, "sub": "acme-3pl", "iat": later, "exp": later + 60,
                        "scope": "fulfillment_service:acme-3pl", **answer_claims(event)},
                       key, algorithm="EdDSA", headers={"kid": kid, "typ": ANSWER_PROOF_TYPE})  # fmt: skip
    future = CloudEvent.model_validate({**event.model_dump(mode="json"), ANSWER_PROOF: token})
    assert "the token is not valid yet" in await unproven(auth, future)


NOW = int(time.time())


@pytest.mark.parametrize(
    "times",
    [
        {"iat": str(NOW), "exp": NOW + 60},
        {"iat": NOW, "exp": str(NOW + 60)},
        {"exp": NOW + 60},
        {"iat": True, "exp": "x"},
    ],
)
async def test_an_answer_proof_whose_iat_or_exp_is_not_a_number_is_refused(
    local: LocalAuth, times: dict[str, Any]
) -> None:
    """The claims are read into a typed model (Claims): a time claim written as a string is not
    taken for the number it spells, nor is a missing one taken for zero."""
    key, kid = local.service_key("acme-3pl")
    event = answer()
    claims = {"iss": local.issuer, "aud": local.audience, "sub": "acme-3pl", "scope": "fulfillment_service:acme-3pl",
              **times, **answer_claims(event)}  # fmt: skip
    proof = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": ANSWER_PROOF_TYPE})
    refused = CloudEvent.model_validate({**event.model_dump(mode="json"), ANSWER_PROOF: proof})
    assert "needs numeric iat and exp claims" in await unproven(authenticator(local), refused)


async def test_an_answer_read_after_its_proof_expired_is_still_applied(local: LocalAuth) -> None:
    """Judged as of when it was made: a consumer that catches up after an outage does not
    dead-letter the service's genuine answers."""
    key, kid = local.service_key("acme-3pl")
    event = answer()
    then = int(time.time()) - 3600
    token = jwt.encode({"iss": local.issuer, "aud": local.audience, "sub": "acme-3pl", "iat": then, "exp": then + 300,
                        "scope": "fulfillment_service:acme-3pl", **answer_claims(event)},
                       key, algorithm="EdDSA", headers={"kid": kid, "typ": ANSWER_PROOF_TYPE})  # fmt: skip
    late = CloudEvent.model_validate({**event.model_dump(mode="json"), ANSWER_PROOF: token})
    assert (await authenticator(local).verify_answer(late, "acme-3pl")).subject == "acme-3pl"


async def test_keys_that_cannot_be_read_leave_an_answer_for_redelivery(local: LocalAuth) -> None:
    """Not the message's fault: a transient error (redelivered), not a dead letter."""
    event = signed(local, answer())
    auth = authenticator(local)
    local.jwks_path.write_text(json.dumps({"keys": "gone"}))
    with pytest.raises(ConnectionError):
        await auth.verify_answer(event, "acme-3pl")


async def test_an_answer_s_proof_copied_off_the_topic_is_not_a_bearer_token(local: LocalAuth) -> None:
    """Review finding: a proof read from fulfillment.responses.v1 (or its DLQ) logged in over HTTP
    as the fulfillment service. A proof has its own JWT type and the API refuses it."""
    proof = (signed(local, answer()).model_extra or {})[ANSWER_PROOF]
    with pytest.raises(Unauthenticated, match="not an access token"):
        await authenticator(local).principal(proof)


async def test_a_fulfillment_service_s_key_signs_only_as_that_service(local: LocalAuth) -> None:
    """Review finding: acme's key minted a token with sub 'local-admin' and scope
    fulfillment_service:acme-3pl, so acme's shipments showed the merchant as their actor."""
    key, kid = local.service_key("acme-3pl")
    impostor = mint_token(key, kid, issuer=local.issuer, audience=local.audience, subject="local-admin",
                          scopes=["fulfillment_service:acme-3pl"], ttl_seconds=60)  # fmt: skip
    with pytest.raises(Unauthenticated, match="signs only for fulfillment service 'acme-3pl', as 'acme-3pl'"):
        await authenticator(local).principal(impostor)


async def test_an_answer_older_than_the_inbox_remembers_is_refused(local: LocalAuth) -> None:
    """Review finding: a captured answer re-published after its id left the inbox (7 days) was
    applied again. A proof older than the inbox's memory (less a day) is refused."""
    auth = authenticator(local)
    event = answer()
    key, kid = local.service_key("acme-3pl")
    issued = int(time.time()) - int(auth.answer_max_age) - 60
    proof = jwt.encode(
        {"iss": local.issuer, "aud": local.audience, "sub": "acme-3pl", "scope": "fulfillment_service:acme-3pl",
         "iat": issued, "exp": issued + 300, **answer_claims(event)},
        key, algorithm=algorithm_for(key), headers={"kid": kid, "typ": ANSWER_PROOF_TYPE},
    )  # fmt: skip
    old = CloudEvent.model_validate({**event.model_dump(mode="json"), ANSWER_PROOF: proof})
    assert "is older than" in await unproven(auth, old)


async def test_while_the_key_set_cannot_be_fetched_the_keys_fetched_last_are_used(local: LocalAuth) -> None:
    """Review finding: when the cached key set lapsed while the identity provider was away, every
    request failed with 503. The keys fetched last keep working until it answers again; a key
    never fetched is still refused."""
    auth = authenticator(local)
    token = local.mint("alice", ["orders:read"], 60)
    assert (await auth.principal(token)).subject == "alice"
    local.jwks_path.rename(local.jwks_path.with_suffix(".away"))  # the provider is unreachable
    assert auth.keys.jwk_set_cache is not None
    auth.keys.jwk_set_cache.put(None)  # and the cached copy has lapsed
    assert (await auth.principal(token)).subject == "alice"
    stranger = mint_token(new_signing_key(), "never-fetched", issuer=local.issuer, audience=local.audience,
                          subject="mallory", scopes=["orders:read"], ttl_seconds=60)  # fmt: skip
    with pytest.raises(AuthUnavailable):
        await auth.principal(stranger)
