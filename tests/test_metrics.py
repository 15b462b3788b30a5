"""/metrics: the Prometheus text format, the bearer token, HTTP latency by route, the gauges' cost."""

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import Alert
from integrations.models import Integration, SyncSession
from syncconsole import metrics
from tests.factories import IntegrationFactory, SyncIssueFactory, SyncSessionFactory
from tests.metrics import TOKEN, scrape, series, value
from tests.queries import measure

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


# -- the token -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"],
)
def test_a_missing_or_wrong_token_is_refused_with_401(header):
    headers = {"Authorization": header} if header else {}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    text = response.content.decode()
    assert "Authorization: Bearer <METRICS_TOKEN>" in text
    assert "syncconsole_" not in text


def test_the_right_token_reads_the_metrics_in_the_text_format():
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "syncconsole_sessions_finished",
        "syncconsole_session_duration_seconds",
        "syncconsole_session_items",
        "syncconsole_sessions_reaped",
        "syncconsole_queue_sessions",
        "syncconsole_queue_oldest_age_seconds",
        "syncconsole_integrations",
        "syncconsole_open_issues",
        "syncconsole_alerts",
        "syncconsole_alert_delivery_lag_seconds",
        "syncconsole_webhook_attempt_duration_seconds",
        "syncconsole_http_request_duration_seconds",
        "syncconsole_metrics_collector_up",
    } <= names


def test_production_without_a_token_refuses_every_scrape(settings):
    settings.METRICS_TOKEN = ""
    settings.PRODUCTION = True
    for headers in ({}, {"Authorization": "Bearer anything"}):
        response = Client().get("/metrics", headers=headers)
        assert response.status_code == 403
        assert "Metrics are switched off: set METRICS_TOKEN" in response.content.decode()


def test_development_without_a_token_serves_them(settings):
    settings.METRICS_TOKEN = ""
    settings.PRODUCTION = False
    assert Client().get("/metrics").status_code == 200


def test_only_get_is_answered():
    response = Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


# -- HTTP latency ----------------------------------------------------------------------------


def test_http_latency_is_labelled_by_route_and_status_never_by_path():
    client = Client()
    before = scrape(client)
    route = "/reauth/<str:token>/"
    assert client.get("/reauth/some-secret-looking-token/").status_code in (404, 410, 200, 400)
    answered = client.get("/reauth/another-token/")
    after = scrape(client)
    status = str(answered.status_code)
    count = "syncconsole_http_request_duration_seconds_count"
    assert value(after, count, method="GET", route=route, status=status) == (
        value(before, count, method="GET", route=route, status=status) + 2
    )
    assert value(after, "syncconsole_http_request_duration_seconds_bucket", method="GET", route=route,
                 status=status, le="+Inf") >= 2  # fmt: skip
    labels = " ".join(str(key) for key in after)
    assert "some-secret-looking-token" not in labels and "another-token" not in labels
    # An address that matches no route is one label value, whatever its path.
    client.get("/no/such/page/12345/")
    later = scrape(client)
    assert value(later, count, method="GET", route="unmatched", status="404") >= 1
    assert "12345" not in " ".join(str(key) for key in later)


def test_the_request_metrics_cost_no_query():
    """The middleware only times: a page answers with the same queries as without it."""
    client = Client()
    client.get("/portal/login/")  # warm up (sessions, CSRF)
    _, queries = measure(client, "/portal/login/")
    assert queries == []


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, requests served by two processes show in a third one's /metrics."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    script = textwrap.dedent(
        """
        import os, sys
        import django
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        django.setup()
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        from django.conf import settings
        settings.METRICS_TOKEN = "t"
        client = Client()
        if sys.argv[1] == "serve":
            assert client.get("/portal/login/").status_code == 200
        else:
            sys.stdout.write(client.get("/metrics", headers={"Authorization": "Bearer t"}).content.decode())
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "DEBUG": "on"}
    # An empty database of its own: the login page needs none, and the database collectors
    # fail there (collector_up 0) without touching anything else.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.sqlite3'}"

    def run(mode):
        done = subprocess.run(
            [sys.executable, "-c", script, mode],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run("serve")
    run("serve")
    samples = {}
    for family in text_string_to_metric_families(run("scrape")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert (
        value(
            samples,
            "syncconsole_http_request_duration_seconds_count",
            method="GET",
            route="/portal/login/",
            status="200",
        )
        == 2
    )
    assert len(list(directory.glob("histogram_*.db"))) >= 2  # one file per process that served


# -- gauges --------------------------------------------------------------------------------------


def test_queue_gauges_count_queued_sessions_per_cluster_and_the_oldest_wait():
    now = timezone.now()
    SyncSessionFactory(
        state=SyncSession.State.QUEUED, trigger="schedule", queued_at=now - timedelta(minutes=7)
    )
    SyncSessionFactory(
        state=SyncSession.State.QUEUED, trigger="schedule", queued_at=now - timedelta(minutes=2)
    )
    SyncSessionFactory(
        state=SyncSession.State.QUEUED, trigger="customer", queued_at=now - timedelta(seconds=30)
    )
    SyncSessionFactory(state=SyncSession.State.RUNNING, trigger="staff", queued_at=now - timedelta(hours=1))
    samples = scrape()
    assert value(samples, "syncconsole_queue_sessions", cluster="syncconsole") == 2
    assert value(samples, "syncconsole_queue_sessions", cluster="urgent") == 1
    assert 7 * 60 <= value(samples, "syncconsole_queue_oldest_age_seconds", cluster="syncconsole") < 8 * 60
    assert 30 <= value(samples, "syncconsole_queue_oldest_age_seconds", cluster="urgent") < 90
    assert value(samples, "syncconsole_sessions_running", cluster="urgent") == 1
    SyncSession.objects.filter(state=SyncSession.State.QUEUED).update(state=SyncSession.State.CANCELLED)
    assert value(scrape(), "syncconsole_queue_oldest_age_seconds", cluster="syncconsole") == 0


def test_integrations_by_status_and_open_issues_by_code(error_catalog):
    IntegrationFactory(status=Integration.Status.ACTIVE)
    IntegrationFactory(status=Integration.Status.ACTIVE)
    failing = IntegrationFactory(status=Integration.Status.FAILING)
    for external_id in ("a", "b", "c"):
        SyncIssueFactory(integration=failing, tenant=failing.tenant, error_code_id="ITEM_MISSING_FIELD",
                         external_id=external_id)  # fmt: skip
    SyncIssueFactory(
        integration=failing, tenant=failing.tenant, error_code_id="ITEM_DUPLICATE", state="resolved"
    )
    samples = scrape()
    assert value(samples, "syncconsole_integrations", status="active") == 2
    assert value(samples, "syncconsole_integrations", status="failing") == 1
    assert value(samples, "syncconsole_integrations", status="deleted") == 0
    assert value(samples, "syncconsole_open_issues", code="ITEM_MISSING_FIELD") == 3
    assert value(samples, "syncconsole_open_issues", code="ITEM_DUPLICATE") == 0
    assert len(series(samples, "syncconsole_open_issues")) >= 16  # every catalog code, zero or not


def test_alerts_by_state_and_the_oldest_pending_one():
    integration = IntegrationFactory()
    now = timezone.now()
    for n, (state, age) in enumerate([("pending", 40), ("pending", 5), ("sent", 600), ("failed", 60)]):
        Alert.objects.create(
            integration=integration, tenant=integration.tenant, rule="repeated_failures", streak=str(n),
            state=state, subject="s", created_at=now - timedelta(minutes=age),
        )  # fmt: skip
    samples = scrape()
    assert value(samples, "syncconsole_alerts", state="pending") == 2
    assert value(samples, "syncconsole_alerts", state="sent") == 1
    assert value(samples, "syncconsole_alerts", state="digest") == 0
    assert 40 * 60 <= value(samples, "syncconsole_alerts_oldest_pending_age_seconds") < 41 * 60


def test_the_gauges_cost_the_same_queries_whatever_the_rows(error_catalog):
    """No gauge reads rows one by one: the scrape's queries do not grow with sessions, issues or alerts."""
    client = Client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    _, small = measure(client, "/metrics", headers=headers)
    integration = IntegrationFactory()
    for n in range(30):
        SyncSessionFactory(integration=IntegrationFactory(), state=SyncSession.State.QUEUED)
        SyncIssueFactory(integration=integration, tenant=integration.tenant, error_code_id="ITEM_MISSING_FIELD",
                         external_id=f"x{n}")  # fmt: skip
    _, large = measure(client, "/metrics", headers=headers)
    assert len(large) == len(small)
    assert all("COUNT(" not in sql.upper() or "LIMIT" in sql.upper() for sql in large if "issue" in sql)


def test_a_failing_collector_leaves_the_others_and_says_so(monkeypatch):
    class Broken:
        def collect(self):
            raise DatabaseError("the database went away")
            yield  # pragma: no cover

    monkeypatch.setitem(metrics._COLLECTORS, "broken", Broken())
    samples = scrape()
    assert value(samples, "syncconsole_metrics_collector_up", collector="broken") == 0
    assert value(samples, "syncconsole_metrics_collector_up", collector="integrations") == 1
    assert ("syncconsole_integrations", (("status", "active"),)) in samples


def test_worker_gauges_read_the_heartbeats(settings):
    from integrations.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.create(
        cluster="syncconsole", host="a", pid=1, last_beat_at=now - timedelta(seconds=3)
    )
    WorkerHeartbeat.objects.create(
        cluster="syncconsole", host="b", pid=2, last_beat_at=now - timedelta(hours=2)
    )
    samples = scrape()
    assert value(samples, "syncconsole_workers_live", cluster="syncconsole") == 1
    assert value(samples, "syncconsole_workers_live", cluster="urgent") == 0
    assert 3 <= value(samples, "syncconsole_worker_last_beat_age_seconds", cluster="syncconsole") < 30
    assert ("syncconsole_worker_last_beat_age_seconds", (("cluster", "urgent"),)) not in samples
    assert value(samples, "syncconsole_urgent_fallback_active") == (
        1 if settings.URGENT_FALLBACK_SECONDS else 0
    )
