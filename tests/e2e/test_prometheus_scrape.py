"""A real Prometheus server scrapes every service, and the shipped alert rules load.

Prometheus is a Debian package (`apt-get install prometheus`), not a Python one: where it is
not installed these tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local_stack import ROOT, LocalStack, free_port
from tests.conftest import eventually

pytestmark = pytest.mark.e2e
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(not PROMETHEUS, reason="prometheus not installed (apt-get install prometheus)")


@needs_prometheus
def test_shipped_config_and_alert_rules_are_valid() -> None:
    assert PROMTOOL
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(ROOT / "deploy/prometheus/prometheus.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = (ROOT / "deploy/prometheus/alerts.yml").read_text().count("- alert:")
    assert f"{alerts} rules found" in result.stdout, "promtool read every alert rule in the file"


@pytest.fixture
def prometheus(stack: LocalStack, tmp_path: Path) -> Iterator[str]:
    assert PROMETHEUS
    targets = "\n".join(
        f"      - targets: ['127.0.0.1:{stack.service_ports[name]}']\n        labels: {{service: {name}}}"
        for name in ("orders", "inventory", "fulfillment", "notifications")
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"rule_files: ['{ROOT / 'deploy/prometheus/alerts.yml'}']\n"
        f"scrape_configs:\n  - job_name: fulfillment-platform\n    static_configs:\n{targets}\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@needs_prometheus
async def test_prometheus_scrapes_every_service(prometheus: str, http: httpx.AsyncClient, stack: LocalStack) -> None:
    async def query(expr: str) -> list[dict[str, object]]:
        try:
            reply = await http.get(prometheus + "/api/v1/query", params={"query": expr})
        except httpx.TransportError:
            return []
        return list(reply.json()["data"]["result"]) if reply.status_code == 200 else []

    async def all_up() -> bool:
        results = await query('up{job="fulfillment-platform"} == 1')
        return len(results) == 4

    await eventually(all_up, timeout=30, interval=0.5)

    order = {
        "customer": {"email": "buyer@example.com", "name": "Ada"}, "currency": "SEK", "financial_status": "paid",
        "line_items": [{"sku": "EBOOK", "title": "Ebook", "quantity": 1, "unit_price": "5",
                        "requires_shipping": False, "digital_asset_url": "https://cdn.example.com/e.pdf"}],
    }  # fmt: skip
    assert (await http.post(stack.url("orders") + "/orders", json=order)).status_code == 201

    async def published_by_orders() -> bool:
        return bool(await query('faststream_published_messages_total{service="orders"} > 0'))

    await eventually(published_by_orders, timeout=30, interval=0.5)

    async def business_metrics_scraped() -> bool:
        """Issue 12: the business metrics and the default process metrics reach Prometheus: the
        paid order counted by orders, its download email by notifications, fulfillment's gauges."""
        wanted = [
            'orders_paid_total{service="orders"} > 0',
            'emails_total{service="notifications", outcome="sent"} > 0',
            'fulfillment_orders_open{service="fulfillment", status="OPEN"}',
            'outbox_pending_aggregates{service="fulfillment", collection="fulfillment_orders"}',
            'process_resident_memory_bytes{service="inventory"} > 0',
        ]
        return all([bool(await query(expr)) for expr in wanted])

    await eventually(business_metrics_scraped, timeout=60, interval=1)
