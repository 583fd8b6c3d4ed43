"""Issue 12, "Monitoring that works on a cluster" and "A Grafana dashboard": the alert rules fire
for series shaped as a cluster scrape makes them (promtool test rules; the old rules' ServiceDown
never did), the PrometheusRule and the dashboard's ConfigMap are what deploy/monitoring.py makes of
alerts.yml and the dashboard, the dashboard has what Grafana needs, every query of it parses with
promtool, and every metric a query or a rule reads is one the services export or a named exporter's.

promtool is a Debian package (prometheus; deploy/test-tools.sh installs it): where it is missing
the tests that run it are skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from pydantic import SecretStr

from deploy import monitoring
from services.fulfillment.app import FulfillmentSettings
from services.fulfillment.app import build as build_fulfillment
from services.inventory.app import InventorySettings
from services.inventory.app import build as build_inventory
from services.notifications.app import NotificationsSettings
from services.notifications.app import build as build_notifications
from services.orders.app import OrdersSettings
from services.orders.app import build as build_orders
from shared.runtime import ServiceRuntime
from tests.deploy.manifests import OVERLAYS, kustomize_command, render

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; deploy/test-tools.sh does)"
)
PROMETHEUS_DIR = monitoring.ALERTS.parent
EXTERNAL_METRICS = {
    "up": "Prometheus itself, for every target",
    "kafka_consumergroup_lag": "Strimzi's Kafka Exporter (spec.kafkaExporter), scraped by the PodMonitor",
    "kafka_topic_partition_current_offset": "Strimzi's Kafka Exporter",
}
# Grafana's variables, replaced by a value of the same kind so that promtool can parse the query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$namespace": ".*"}
NOWHERE: dict[str, Any] = {
    "kafka_bootstrap_servers": "127.0.0.1:9",
    "mongodb_uri": "mongodb://127.0.0.1:9/?directConnection=true",
    "auth_jwks_url": "https://idp.example.com/.well-known/jwks.json",
    "auth_issuer": "https://idp.example.com/",
    "auth_audience": "fulfillment-platform",
}
BUILDERS: dict[str, Callable[[], tuple[ServiceRuntime, FastAPI]]] = {
    "orders": lambda: build_orders(OrdersSettings(**NOWHERE)),
    "inventory": lambda: build_inventory(InventorySettings(**NOWHERE)),
    "fulfillment": lambda: build_fulfillment(FulfillmentSettings(**NOWHERE)),
    "notifications": lambda: build_notifications(
        NotificationsSettings(**NOWHERE, download_link_secret=SecretStr("test-download-link-secret-0123456789"))
    ),
}
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


@cache
def exported_series() -> dict[str, set[str]]:
    """Every series name each service's /metrics can hold (its registry, built but not started)."""
    exported: dict[str, set[str]] = {}
    for service, build in BUILDERS.items():
        runtime, _ = build()
        names = set()
        for family in runtime.registry.collect():
            names |= {family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
        exported[service] = names
    return exported


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(monitoring.ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(monitoring.DASHBOARD.read_text())
    return board


def queries() -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every dashboard query, Grafana's variables substituted."""
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            yield panel["title"], expr


def metric_names(expr: str) -> set[str]:
    import promql_parser

    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


@needs_promtool
def test_promtool_checks_the_alert_rules() -> None:
    done = promtool("check", "rules", str(monitoring.ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(alert_rules())} rules found" in done.stdout


@needs_promtool
def test_the_rules_fire_for_series_shaped_like_a_cluster_scrape() -> None:
    """ServiceDown, which never fired for pods discovered on a cluster (its rule read
    up{job="fulfillment-platform"}), fires for a kubernetes-pods scrape and a ServiceMonitor's;
    so do the other alerts, each in deploy/prometheus/alerts.test.yml."""
    done = promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_rule_unit_test() -> None:
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS_DIR / "alerts.test.yml").read_text()))
    untested = {rule["alert"] for rule in alert_rules()} - tested - {"UnreadMessagesSkipped", "HandlerFailing",
                                                                    "SlowMessageProcessing"}  # fmt: skip
    assert untested == set(), "alerts the issue names must be proved by promtool test rules"


def test_the_rules_group_by_labels_a_cluster_scrape_has() -> None:
    """No rule selects the local static config's job: that label does not exist on a cluster."""
    for rule in alert_rules():
        assert "fulfillment-platform" not in rule["expr"], rule["alert"]


def test_the_generated_rule_dashboard_and_config_map_are_committed_as_generated() -> None:
    stale = [str(path) for path, text in monitoring.rendered().items() if path.read_text() != text]
    assert stale == [], f"run `python -m deploy.monitoring`: {stale} differ"
    rule = yaml.safe_load((monitoring.K8S / "prometheus-rule.yaml").read_text())
    assert rule["spec"]["groups"] == yaml.safe_load(monitoring.ALERTS.read_text())["groups"]
    config_map = yaml.safe_load((monitoring.K8S / "grafana-dashboard.yaml").read_text())
    assert json.loads(config_map["data"]["fulfillment-platform.json"]) == dashboard()


def test_the_dashboard_has_what_grafana_requires() -> None:
    """No dashboard JSON schema ships in a registry package (Grafana's own is in its AGPL repository,
    its Python SDK has types, not a validator): the fields Grafana needs to load and lay it out."""
    board = dashboard()
    assert isinstance(board["title"], str) and board["title"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert {"from", "to"} <= set(board["time"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "hwxy") and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            assert panel["panels"] == [] and panel["collapsed"] is False
            continue
        assert panel["type"] in {"timeseries", "stat", "gauge", "table", "bargauge"} and panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"])
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= {"__rate_interval", "namespace"}, f"{panel['title']}: unknown variable {used}"


def test_the_dashboard_shows_the_business_flow_the_pipes_and_email() -> None:
    titles = " | ".join(panel["title"] for panel in dashboard()["panels"])
    for wanted in ("Orders paid → fulfilled", "Open fulfillment orders by status", "Holds placed by reason",
                   "Fulfill-by at risk", "Consumer lag per group", "Handler p95", "Dead-lettered", "Outbox backlog",
                   "Emails by type"):  # fmt: skip
        assert wanted in titles


@needs_promtool
def test_every_dashboard_query_parses_with_promtool(tmp_path: Path) -> None:
    """Each query as a recording rule: `promtool check rules` parses every expression."""
    records = [{"record": f"dashboard:query_{n}", "expr": expr} for n, (_, expr) in enumerate(queries())]
    assert len(records) > 20
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    done = promtool("check", "rules", str(rules), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum(rate(a[5m])"}]}]})
    )
    assert promtool("check", "rules", str(broken), cwd=tmp_path).returncode != 0, "the check is not vacuous"


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_queried_is_exported_by_a_service_or_a_named_exporter(source: str) -> None:
    exprs = [expr for _, expr in queries()] if source == "dashboard" else [r["expr"] for r in alert_rules()]
    exported = set().union(*exported_series().values()) | set(EXTERNAL_METRICS)
    unknown = {name for expr in exprs for name in metric_names(expr)} - exported
    assert unknown == set(), f"{source} reads metrics nothing exports: {sorted(unknown)}"


def test_the_business_metrics_come_from_the_service_that_owns_them() -> None:
    exported = exported_series()
    assert "orders_paid_total" in exported["orders"] and "orders_paid_total" not in exported["fulfillment"]
    assert "fulfillment_holds_placed_total" in exported["fulfillment"]
    assert "inventory_reservations_total" in exported["inventory"]
    assert "emails_total" in exported["notifications"]
    assert all("process_resident_memory_bytes" in names for names in exported.values())


@pytest.mark.skipif(kustomize_command() is None, reason="neither kubectl nor kustomize is installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlays_scrape_every_service_and_carry_the_rules_and_dashboard(overlay: str) -> None:
    resources = render(overlay)
    kinds = {(r["kind"], r["metadata"]["name"]) for r in resources}
    assert ("PrometheusRule", "fulfillment-platform") in kinds
    assert ("ConfigMap", "fulfillment-platform-dashboard") in kinds
    assert ("PodMonitor", "fulfillment-kafka-exporter") in kinds
    (monitor,) = [r for r in resources if r["kind"] == "ServiceMonitor"]
    selected = set(monitor["spec"]["selector"]["matchExpressions"][0]["values"])
    assert monitor["spec"]["podTargetLabels"] == ["app"], "the rules key on the pods' app label"
    services = {
        r["metadata"]["name"]: r for r in resources if r["kind"] == "Service" and r["metadata"]["name"] in BUILDERS
    }
    assert selected == set(services) == set(BUILDERS)
    for name, service in services.items():
        assert service["metadata"]["labels"]["app"] == name
        port_names = {port["name"] for port in service["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= port_names
