"""Kafka over TLS, as the Kubernetes kit runs it (`KAFKA_SECURITY_PROTOCOL=SASL_SSL` against
Strimzi's TLS listener): the services' broker and the dead-letter tool check the brokers'
certificate against `KAFKA_SSL_CAFILE`, and refuse a broker whose certificate it did not sign.

The embedded broker can listen with TLS, not authenticate (librdkafka's mock cluster answers no
SaslHandshake), so SASL is shown by the clients its settings build, TLS by a real exchange."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from deploy.dlq import read_dead_letters
from deploy.embedded_kafka import EmbeddedKafka
from shared.kafka_connection import client_options
from shared.messaging import build_broker
from shared.settings import KafkaSettings, ServiceSettings
from shared.topics import ORDERS_EVENTS


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
    address: str = "127.0.0.1",
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if issuer is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:  # a broker, at the address its certificate names
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


@dataclass(frozen=True)
class ClusterCa:
    """A cluster CA (as Strimzi makes one) in a PEM file, and brokers' TLS contexts it signed."""

    cafile: Path
    broker: ssl.SSLContext
    """A broker's, for the address it is reached at (127.0.0.1)."""
    misnamed: ssl.SSLContext
    """A broker's whose certificate names another address."""


@pytest.fixture(scope="module")
def cluster_ca(tmp_path_factory: pytest.TempPathFactory) -> ClusterCa:
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("cluster-ca", ca_key, None, ca_key)
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def broker(name: str, address: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{name}.crt").write_bytes(
            _certificate(name, key, ca.subject, ca_key, address).public_bytes(serialization.Encoding.PEM)
        )
        (folder / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(folder / f"{name}.crt", folder / f"{name}.key")
        return server

    return ClusterCa(folder / "ca.crt", broker("broker", "127.0.0.1"), broker("elsewhere", "10.9.8.7"))


@pytest.fixture(scope="module")
def tls_kafka(cluster_ca: ClusterCa) -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(port=0, tls=cluster_ca.broker) as kafka:
        yield kafka


async def refused_because(settings: KafkaSettings, caplog: pytest.LogCaptureFixture) -> str:
    """Why a client with these settings cannot connect, as aiokafka logs it (the test fails if it
    can connect)."""
    producer = AIOKafkaProducer(**client_options(settings), request_timeout_ms=5_000)
    try:
        with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()
    return "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("aiokafka"))


async def test_a_service_configured_for_sasl_ssl_as_the_kubernetes_kit_configures_it_can_build_its_kafka_clients() -> (
    None
):
    """Before: aiokafka refused the clients ("`ssl_context` is mandatory if security_protocol=='SSL'"),
    so every service of the kit stopped at start."""
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="orders",
        kafka_sasl_password=SecretStr("not-a-real-password"),
    )
    options = client_options(settings)
    AIOKafkaProducer(**options)
    AIOKafkaConsumer(**options)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "orders"
    context = options["ssl_context"]
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_the_services_broker_and_the_dlq_tool_speak_tls_to_a_broker_that_kafka_ssl_cafile_vouches_for(
    tls_kafka: EmbeddedKafka, cluster_ca: ClusterCa
) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=tls_kafka.bootstrap_servers,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=cluster_ca.cafile,
    )
    broker = build_broker(settings, CollectorRegistry())
    await broker.start()
    try:
        dlq = f"{ORDERS_EVENTS.name}.dlq"
        await broker.publish(b"{half a message", topic=dlq, key=b"k", headers={"x-dlq-reason": "malformed"})
    finally:
        await broker.stop()
    letters, _ = await read_dead_letters(settings, ORDERS_EVENTS.name)
    assert [(letter.record.value, letter.headers["x-dlq-reason"]) for letter in letters] == [
        (b"{half a message", "malformed")
    ]


async def test_a_broker_whose_certificate_the_configured_cas_did_not_sign_is_refused(
    tls_kafka: EmbeddedKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """Without KAFKA_SSL_CAFILE the system's CAs are the judges, and they never signed this broker."""
    settings = KafkaSettings(kafka_bootstrap_servers=tls_kafka.bootstrap_servers, kafka_security_protocol="SSL")
    assert "CERTIFICATE_VERIFY_FAILED" in await refused_because(settings, caplog)


async def test_a_broker_whose_certificate_names_another_address_is_refused(
    cluster_ca: ClusterCa, caplog: pytest.LogCaptureFixture
) -> None:
    """The CA signed it, but for another broker: host names are checked too."""
    with EmbeddedKafka(port=0, tls=cluster_ca.misnamed) as kafka:
        settings = KafkaSettings(
            kafka_bootstrap_servers=kafka.bootstrap_servers,
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=cluster_ca.cafile,
        )
        assert "IP address mismatch" in await refused_because(settings, caplog)
