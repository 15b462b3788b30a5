"""docs/OPERATIONS.md, the Grafana dashboard and the Prometheus rules speak of metrics /metrics really exposes."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.metrics import TOKEN

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "grafana" / "syncconsole.json"
RULES = ROOT / "docs" / "prometheus" / "alerts.yml"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
NAME = re.compile(r"\bsyncconsole_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture
def exposed(db, settings):
    """{exposition name (a counter with _total): [names a query may use]} of every metric /metrics shows."""
    settings.METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    families = text_string_to_metric_families(response.content.decode())
    return {
        family.name + SUFFIXES[family.type][0] if family.type == "counter" else family.name: [
            family.name + suffix for suffix in SUFFIXES[family.type]
        ]
        for family in families
    }


def dashboard_queries():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def rules():
    return yaml.safe_load(RULES.read_text())["groups"][0]["rules"]


def test_the_dashboard_and_the_rules_query_only_exposed_metrics(exposed):
    usable = {name for names in exposed.values() for name in names}
    queried = {
        name
        for text in [*dashboard_queries(), *(rule["expr"] for rule in rules())]
        for name in NAME.findall(text)
    }
    assert queried and queried - usable == set()


def test_operations_lists_every_exposed_metric_and_no_other(exposed):
    text = OPERATIONS.read_text()
    listed = set(re.findall(r"^\| `(syncconsole_[a-z_]+)` \| (counter|gauge|histogram) \|", text, re.M))
    types = {name for name, _ in listed}
    assert types == set(exposed)
    for name, kind in listed:
        assert kind in ("counter" if name.endswith("_total") else ("histogram", "gauge"))


def test_the_alert_rules_cover_what_the_issue_asks():
    by_name = {rule["alert"]: rule for rule in rules()}
    assert "syncconsole_workers_live" in by_name["SyncConsoleNoUrgentWorker"]["expr"]
    assert "syncconsole_queue_oldest_age_seconds" in by_name["SyncConsoleQueueOlderThanInterval"]["expr"]
    assert "syncconsole_sessions_reaped_total" in by_name["SyncConsoleReapedSessionsRising"]["expr"]
    assert "syncconsole_alert_send_failures_total" in by_name["SyncConsoleAlertDeliveryFailing"]["expr"]
    assert all(rule["annotations"]["summary"] and rule["annotations"]["description"] for rule in rules())


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="needs promtool (Debian: apt-get install prometheus)"
)
def test_promtool_accepts_the_rules_and_every_dashboard_query(tmp_path):
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The dashboard's queries, written as recording rules, so that promtool parses each one.
    recorded = tmp_path / "dashboard.yml"
    recorded.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [
                            {"record": f"dashboard:q{n}", "expr": q}
                            for n, q in enumerate(dashboard_queries())
                        ],
                    }
                ]
            }
        )
    )
    checked = subprocess.run(["promtool", "check", "rules", str(recorded)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
