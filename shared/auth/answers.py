"""A fulfillment service's answer on Kafka and its proof: a JWT bound to that one message.

Consumers cannot see a Kafka producer's principal, so the proof travels in the message (its
`authtoken` attribute): `sign_answer` makes it, `Authenticator.verify_answer` (shared.auth.tokens)
checks it against `answer_claims` before the answer is applied.
"""

from __future__ import annotations

import hashlib

import rfc8785

from shared.auth.minting import SigningKey, mint_token
from shared.auth.principal import SERVICE_SCOPE_PREFIX
from shared.events import ANSWER_PROOF, CloudEvent

ANSWER_MAX_LIFETIME_SECONDS = 900
"""A fulfillment service's answer proof lives at most this long (exp - iat)."""
ANSWER_PROOF_TYPE = "answer+jwt"
"""The JWT `typ` of an answer proof: a proof is not an access token, and an access token is not a
proof (whoever reads the topic must not be able to call the API with a copied proof)."""


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
