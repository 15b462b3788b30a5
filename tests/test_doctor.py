"""`manage.py doctor` (syncconsole/doctor.py): each problem named with its fix, exit 1; all well, exit 0.

Most tests run the real command in a subprocess with the environment under
test, as an operator would; on PostgreSQL it is run beside real qcluster
processes.
"""

import socket
import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from integrations.sync import heartbeats
from syncconsole import doctor
from tests.integrations.test_cluster_faults import cluster_env, wait_for
from tests.test_settings import PRODUCTION, run

pytest_plugins = ["tests.plugins.simulator", "tests.plugins.qcluster"]


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def beat_both_clusters():
    for cluster in ("syncconsole", "urgent"):
        heartbeats.beat(cluster, "worker-host", 100, timezone.now())


def doctor_here(capsys):
    """Run the command in this process: (output, the CommandError or None)."""
    try:
        call_command("doctor")
        error = None
    except CommandError as exc:
        error = exc
    return capsys.readouterr().out, error


def database_url_of_this_test():
    """The test database (SQLite file or PostgreSQL) as a DATABASE_URL for a subprocess."""
    from tests.plugins.qcluster import database_url

    if connection.vendor == "sqlite":
        return f"sqlite:///{connection.settings_dict['NAME']}"
    return database_url(connection.settings_dict)


# -- in this process ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_all_is_well_on_a_good_configuration(capsys, settings):
    settings.REDIS_URL = ""  # the ORM broker of the test database
    beat_both_clusters()
    out, error = doctor_here(capsys)
    assert error is None, out
    assert "PROBLEM" not in out
    checks = ("settings", "database", "migrations", "workers:syncconsole", "workers:urgent", "clock")
    checks += ("broker", "cache")
    for check in checks:
        assert f"ok       {check}:" in out
    assert out.rstrip().endswith("checks passed.")
    assert "All is well" in out


@pytest.mark.django_db
def test_a_broker_that_does_not_answer_is_named_with_its_fix(capsys, settings):
    port = closed_port()
    settings.REDIS_URL = f"redis://:s3cret-pass@127.0.0.1:{port}/12"
    beat_both_clusters()
    out, error = doctor_here(capsys)
    assert error is not None and "1 problem found" in str(error)
    assert f"PROBLEM  broker: unreachable (ConnectionError:" in out
    assert f"start Redis at 127.0.0.1:{port}/12 or correct REDIS_URL" in out
    assert "s3cret-pass" not in out


@pytest.mark.django_db
def test_a_cluster_without_a_live_worker_is_named_with_the_command_that_starts_it(capsys, settings):
    settings.REDIS_URL = ""
    heartbeats.beat("syncconsole", "worker-host", 100, timezone.now())
    out, error = doctor_here(capsys)
    assert error is not None
    assert (
        "PROBLEM  workers:urgent: no live worker (heartbeats: none in the last day); "
        "people's syncs go to the default cluster meanwhile"
    ) in out
    assert "fix: start `Q_CLUSTER_NAME=urgent python manage.py qcluster`" in out
    assert "ok       workers:syncconsole: 1 live" in out


@pytest.mark.django_db
def test_clock_skew_between_this_machine_and_the_database_is_named(capsys, settings, monkeypatch):
    settings.REDIS_URL = ""
    beat_both_clusters()
    real_now = timezone.now
    # This machine's clock runs 30 s ahead of the database's.
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=30))
    finding = doctor.clock_finding()
    assert finding.status == doctor.PROBLEM
    assert "the database's clock is -30." in finding.message
    assert "NTP" in finding.fix


# -- the real command, as an operator runs it ----------------------------------------------------------


def test_a_missing_key_is_the_settings_refusal_without_a_traceback():
    env = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}
    result = run(["manage.py", "doctor"], env)
    assert result.returncode == 1
    assert result.stdout.startswith("PROBLEM  settings: the settings refuse to load: Production mode")
    assert "needs SECRET_KEY" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_weak_key_and_an_unreachable_database_are_named():
    env = {
        **PRODUCTION,
        "SECRET_KEY": "too-short",
        "DATABASE_URL": f"postgres://syncconsole@127.0.0.1:{closed_port()}/syncconsole",
        "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/12",
    }
    result = run(["manage.py", "doctor"], env)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "PROBLEM  settings: security.W009: Your SECRET_KEY has less than 50 characters" in out
    assert "PROBLEM  database: unreachable" in out
    assert "fix: check DATABASE_URL (127.0.0.1:" in out
    assert "skipped  migrations: not checked: no database" in out
    assert "PROBLEM  broker: unreachable" in out
    assert "PROBLEM  cache: unreachable" in out
    assert "too-short" not in out
    assert "CommandError: 4 problems found" in result.stderr


def test_credentials_keys_that_are_not_fernet_keys_are_named_never_shown():
    good = Fernet.generate_key().decode()
    env = {
        **PRODUCTION,
        "CREDENTIALS_KEYS": f"{good},not-a-fernet-key",
        "DATABASE_URL": f"postgres://syncconsole@127.0.0.1:{closed_port()}/syncconsole",
    }
    result = run(["manage.py", "doctor"], env)
    assert result.returncode == 1
    assert "PROBLEM  settings: CREDENTIALS_KEYS entry 2 of 2 is not a Fernet key" in result.stdout
    assert "not-a-fernet-key" not in result.stdout and good not in result.stdout


def test_debug_on_with_a_public_site_url_is_named():
    result = run(
        ["manage.py", "doctor"],
        {
            "DEBUG": "on",
            "SITE_URL": "https://console.example.com",
            "DATABASE_URL": "sqlite:////nonexistent/dir/db",
        },
    )
    assert result.returncode == 1
    assert "PROBLEM  settings: DEBUG is on although SITE_URL is https://console.example.com" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_1_and_names_redis_when_the_broker_url_points_at_a_closed_port():
    beat_both_clusters()
    port = closed_port()
    result = run(
        ["manage.py", "doctor"],
        {
            "DEBUG": "on",
            "DATABASE_URL": database_url_of_this_test(),
            "REDIS_URL": f"redis://127.0.0.1:{port}/12",
        },
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"PROBLEM  broker: unreachable" in result.stdout
    assert f"Redis at 127.0.0.1:{port}/12" in result.stdout
    assert "ok       database: reachable" in result.stdout


def test_pending_migrations_are_named(tmp_path):
    fresh = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    result = run(["manage.py", "doctor"], {"DEBUG": "on", "DATABASE_URL": fresh})
    assert result.returncode == 1
    assert "PROBLEM  migrations: " in result.stdout
    assert "integrations.0015_worker_heartbeats" in result.stdout or " ..." in result.stdout
    assert "fix: run `python manage.py migrate`" in result.stdout
    assert "skipped  workers: not checked: the database is not migrated" in result.stdout


# -- beside real clusters ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: qcluster subprocesses")
@pytest.mark.django_db(transaction=True)
def test_all_is_well_with_both_clusters_running_and_a_dead_one_is_named(vendor_simulator, qcluster_factory):
    beats = {"WORKER_HEARTBEAT_SECONDS": "1", "WORKER_DEAD_AFTER_SECONDS": "3"}
    env = cluster_env(vendor_simulator, **beats)
    qcluster_factory(env=env)
    urgent = qcluster_factory(cluster_name="urgent", env=env)
    doctor_env = {"DEBUG": "on", "DATABASE_URL": database_url_of_this_test(), **beats}
    result = wait_for(
        lambda: (done := run(["manage.py", "doctor"], doctor_env)).returncode == 0 and done,
        timeout=20,
        interval=0.5,
        what="doctor to find both clusters alive",
    )
    assert "All is well" in result.stdout
    assert "ok       workers:urgent: " in result.stdout

    urgent.kill()
    time.sleep(3 + 1)
    result = run(["manage.py", "doctor"], doctor_env)
    assert result.returncode == 1
    assert "PROBLEM  workers:urgent: no live worker (heartbeats: last at" in result.stdout
    assert "ok       workers:syncconsole:" in result.stdout
