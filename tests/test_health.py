"""/healthz and /readyz (syncconsole/health.py).

/readyz is checked against real peers: a Redis server started here (stopped and
started again to show the answer recovering) and, on PostgreSQL, real qcluster
processes whose heartbeats come and go.
"""

import shutil
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.sync import heartbeats
from syncconsole import health
from tests.integrations.test_cluster_faults import cluster_env, wait_for
from tests.test_settings import PRODUCTION, run

pytest_plugins = ["tests.plugins.simulator", "tests.plugins.qcluster"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ready(client):
    response = client.get("/readyz")
    return response.status_code, response.json()


def beat_both_clusters(now=None):
    now = now or timezone.now()
    for cluster in ("syncconsole", "urgent"):
        heartbeats.beat(cluster, "worker-host", 100, now)


ALL_OK = {
    "database": "ok",
    "migrations": "ok",
    "broker": "ok",
    "cache": "ok",
    "workers:syncconsole": "ok",
    "workers:urgent": "ok",
}


def test_healthz_answers_without_the_database(client):
    """No django_db mark: any query would fail this test."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_is_ok_when_every_check_passes_and_reads_no_big_table(client, settings, monkeypatch):
    monkeypatch.setattr(health, "_fully_migrated", False)
    beat_both_clusters()
    with CaptureQueriesContext(connection) as first:
        assert ready(client) == (200, {"status": "ok", "checks": ALL_OK})
    assert [q for q in first.captured_queries if "django_migrations" in q["sql"]]

    # Migrated once, remembered: the next probes read neither the migration files nor django_migrations.
    assert health._fully_migrated
    with CaptureQueriesContext(connection) as queries:
        status, _ = ready(client)
    sql = [query["sql"] for query in queries.captured_queries]
    assert status == 200
    # SELECT 1, the heartbeats and, without Redis, one row of the ORM broker's table.
    assert len(sql) == (2 if settings.REDIS_URL else 3), sql
    assert not [s for s in sql if "COUNT(" in s.upper() and "heartbeat" not in s]
    assert not [s for s in sql if "django_migrations" in s]


@pytest.mark.django_db
def test_readyz_names_a_cluster_without_a_live_worker(client, settings):
    settings.WORKER_DEAD_AFTER_SECONDS = 30
    now = timezone.now()
    heartbeats.beat("syncconsole", "worker-host", 100, now)
    heartbeats.beat("urgent", "worker-host", 101, now - timedelta(seconds=31))

    status, body = ready(client)
    assert status == 503
    assert body == {"status": "failing", "checks": {**ALL_OK, "workers:urgent": "failing"}}

    heartbeats.beat("urgent", "worker-host", 101, timezone.now())
    assert ready(client) == (200, {"status": "ok", "checks": ALL_OK})


@pytest.mark.django_db
def test_readyz_fails_when_redis_does_not_answer(client, settings):
    beat_both_clusters()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/12"  # nothing listens there
    started = time.monotonic()
    status, body = ready(client)
    assert time.monotonic() - started < health.REDIS_TIMEOUT + 1
    assert status == 503
    assert body == {"status": "failing", "checks": {**ALL_OK, "broker": "failing"}}


@pytest.fixture
def own_redis(tmp_path):
    """``own_redis.start()``, ``.stop()``: a Redis server of the test's own (never the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server")

    class Server:
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        process = None

        def start(self):
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for(self.answers, timeout=10, interval=0.05, what="redis-server to listen")

        def answers(self):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        def stop(self):
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                self.process.wait(10)

    server = Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_follows_the_broker_going_down_and_coming_back(client, settings, own_redis):
    beat_both_clusters()
    settings.REDIS_URL = own_redis.url
    own_redis.start()
    assert ready(client) == (200, {"status": "ok", "checks": ALL_OK})

    own_redis.stop()
    status, body = ready(client)
    assert status == 503
    assert body["checks"] == {**ALL_OK, "broker": "failing"}

    own_redis.start()
    assert ready(client) == (200, {"status": "ok", "checks": ALL_OK})


def test_probes_over_plain_http_are_not_redirected_in_production():
    """Production redirects http to https, except the probes a load balancer sends to the process itself."""
    code = (
        "import django; django.setup(); from django.test import Client;"
        "c = Client(HTTP_HOST='console.example.com');"
        "print(c.get('/healthz').status_code, c.get('/admin/').status_code)"
    )
    result = run(["-c", code], PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "301"]


# -- real clusters -------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: qcluster subprocesses")
@pytest.mark.django_db(transaction=True)
def test_readyz_follows_real_workers(client, settings, vendor_simulator, qcluster_factory):
    settings.WORKER_DEAD_AFTER_SECONDS = 3
    env = cluster_env(vendor_simulator, WORKER_HEARTBEAT_SECONDS=1, WORKER_DEAD_AFTER_SECONDS=3)
    # This process checks the broker it is configured with; the clusters use the ORM one.
    if settings.REDIS_URL:
        settings.REDIS_URL = ""
    status, body = ready(client)
    assert status == 503
    assert body["checks"]["workers:syncconsole"] == body["checks"]["workers:urgent"] == "failing"

    qcluster_factory(env=env)
    urgent = qcluster_factory(cluster_name="urgent", env=env)
    wait_for(lambda: ready(client)[0] == 200, timeout=15, what="/readyz to be ok with both clusters running")
    assert ready(client)[1] == {"status": "ok", "checks": ALL_OK}

    urgent.kill()
    killed = time.monotonic()
    wait_for(lambda: ready(client)[0] == 503, timeout=10, what="/readyz to notice the dead urgent cluster")
    assert time.monotonic() - killed <= 3 + 2
    assert ready(client)[1]["checks"] == {**ALL_OK, "workers:urgent": "failing"}

    qcluster_factory(cluster_name="urgent", env=env)
    wait_for(lambda: ready(client)[0] == 200, timeout=15, what="/readyz to recover")

