"""How to reach the Kafka cluster, decided once for the services' broker (shared.messaging) and the
operators' tools that speak Kafka themselves (deploy.dlq): the same security for both.

TLS (`SSL`, `SASL_SSL`) checks the brokers' certificates and host names against
`KAFKA_SSL_CAFILE` (Strimzi's cluster CA, say) or else the system's CAs; aiokafka takes no
TLS connection without a context, so there always is one.
"""

from __future__ import annotations

import ssl
from typing import TypedDict, cast

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.settings import KafkaSettings

SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def tls_context(settings: KafkaSettings) -> ssl.SSLContext:
    """Certificates checked (host names too) against KAFKA_SSL_CAFILE, else the system's CAs."""
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def build_security(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream's security for the configured protocol (None: plaintext, no authentication)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = tls_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    sasl = SASL[settings.kafka_sasl_mechanism or "PLAIN"]
    return sasl(settings.kafka_sasl_username or "", password, ssl_context=context, use_ssl=context is not None)


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of an aiokafka client (consumer, producer, admin) for the cluster."""

    bootstrap_servers: str
    security_protocol: str
    ssl_context: ssl.SSLContext | None
    sasl_mechanism: str
    sasl_plain_username: str
    sasl_plain_password: str


def client_options(settings: KafkaSettings) -> ClientOptions:
    """What a client of the operators' tools takes: the brokers, and the security FastStream's
    broker gets (its own translation of it, `parse_security`, for aiokafka)."""
    options = cast(ClientOptions, parse_security(build_security(settings)))
    options["bootstrap_servers"] = settings.kafka_bootstrap_servers
    return options
