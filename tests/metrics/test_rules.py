"""The shipped Prometheus and Grafana files, checked by Prometheus' own ``promtool`` and against each other.

``promtool test rules`` runs the alert stories in deploy/prometheus/streamup.rules.test.yml (each alert fires
on its story and stays quiet on the near misses); whether each expression returns data from a real run is
test_prometheus.py's business. No Grafana or container engine runs here, so the dashboard's provisioning and
the compose demo are checked for what can go wrong offline: names and paths that must agree.
"""

from __future__ import annotations

import json
import subprocess

import yaml

from streamup import config
from tests.conftest import REPO
from tests.metrics import promql

PROMTOOL = "/usr/bin/promtool"
GRAFANA = REPO / "grafana"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"


def _promtool(*args: str) -> str:
    out = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_promtool_checks_the_rules() -> None:
    assert "SUCCESS: 11 rules found" in _promtool("check", "rules", str(promql.RULES))


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    assert "SUCCESS" in _promtool("test", "rules", str(promql.RULE_TESTS))
    tested = {t["alertname"] for case in yaml.safe_load(promql.RULE_TESTS.read_text())["tests"]
              for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    alerts = {e.where.removeprefix("rules: ") for e in promql.rule_expressions() if e.alert}
    assert tested == alerts == {"StreamupWorkerStalled", "StreamupFailureRatioHigh",
                                "StreamupQueueBacklogGrowing", "StreamupOomRetriesFrequent",
                                "StreamupTierSlowerThanPromise"}


def test_promtool_checks_the_example_config() -> None:
    assert "SUCCESS" in _promtool("check", "config", str(PROMETHEUS_YML))


def test_tier_promises_are_the_seeds_claims() -> None:
    from benchmarks.tiers import CLAIMED  # the seed's table, as benchmarks/tiers.py measures it

    promises = {}
    for group in yaml.safe_load(promql.RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("record") == "streamup:tier_promise_seconds_per_video_second":
                promises[rule["labels"]["tier"]] = float(rule["expr"].removeprefix("vector(").rstrip(")"))
    assert promises == {tier: rows[10] / 10 for tier, rows in CLAIMED.items()}


def test_every_panel_uses_the_provisioned_datasource() -> None:
    (source,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"]
    dashboard = json.loads(promql.DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"]), panel["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_demo_mounts_what_exists_and_wires_the_worker() -> None:
    compose = yaml.safe_load((GRAFANA / "docker-compose.yml").read_text())
    services = compose["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0]
            assert (GRAFANA / host).resolve().exists(), volume
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "streamup.yml").read_text())
    mounted = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounted
    worker = services["worker"]
    env = worker["environment"]
    assert {config.SQS_QUEUE_URL, config.S3_BUCKET_NAME, config.HTTP_HOST} <= set(env)
    port = worker["command"][worker["command"].index("--metrics-port") + 1]
    targets = {t for job in yaml.safe_load(PROMETHEUS_YML.read_text())["scrape_configs"]
               for sc in job["static_configs"] for t in sc["targets"]}
    assert f"worker:{port}" in targets and "pushgateway:9091" in targets
