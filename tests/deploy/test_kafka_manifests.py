"""Issue 12, topics as code: the Strimzi topics, users and the autoscalers are what
`python -m deploy.kafka_manifests` makes of shared/topics.py; a catalog change that is not
regenerated, or a hand edit of the YAML, fails here."""

from __future__ import annotations

from typing import Any

import yaml

from deploy import kafka_manifests
from shared.topics import DLQ_PARTITIONS, TOPICS


def committed(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((kafka_manifests.OUT / name).read_text()) if doc]


def test_the_committed_manifests_are_what_the_catalog_generates() -> None:
    generated = kafka_manifests.rendered()
    stale = [name for name, text in generated.items() if (kafka_manifests.OUT / name).read_text() != text]
    assert stale == [], f"run `python -m deploy.kafka_manifests`: {stale} disagree with shared/topics.py"


def test_every_catalog_topic_and_its_dead_letter_topic_is_provisioned() -> None:
    topics = {t["spec"]["topicName"]: t["spec"] for t in committed("topics.yaml")}
    expected = {t.name: t.partitions for t in TOPICS} | {t.dlq: DLQ_PARTITIONS for t in TOPICS}
    assert {name: spec["partitions"] for name, spec in topics.items()} == expected
    for name, spec in topics.items():
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
        assert spec["config"]["retention.ms"] == (-1 if name.endswith(".dlq") else 7 * 24 * 3600 * 1000)


def acls(user: dict[str, Any], operation: str, kind: str = "topic") -> set[str]:
    return {
        a["resource"]["name"]
        for a in user["spec"]["authorization"]["acls"]
        if a["resource"]["type"] == kind and operation in a["operations"]
    }


def test_each_service_writes_only_its_own_topics_and_reads_in_its_own_group() -> None:
    users = {u["metadata"]["name"]: u for u in committed("users.yaml")}
    consumed = kafka_manifests.consumed_topics()
    for service in kafka_manifests.SERVICES:
        user = users[service]
        own = {t.name for t in TOPICS if t.owner == service}
        assert acls(user, "Write") - own <= {t.dlq for t in TOPICS}, "writes only its own topics and dead letters"
        assert acls(user, "Write") & {t.name for t in TOPICS} == own
        assert acls(user, "Read") == {t.name for t in consumed[service]}
        assert acls(user, "Read", "group") == {service}
        assert all(a["resource"]["patternType"] == "literal" for a in user["spec"]["authorization"]["acls"])


def test_a_fulfillment_service_reads_requests_and_writes_responses_only() -> None:
    user = kafka_manifests.fulfillment_service_user("acme-3pl")
    assert user["metadata"]["name"] == "fulfillment-service-acme-3pl"
    assert acls(user, "Read") == {"fulfillment.requests.v1"}
    assert acls(user, "Write") == {"fulfillment.responses.v1"}
    assert acls(user, "Read", "group") == {"fulfillment-service-acme-3pl"}
