"""Settings come from the environment; production refuses to start without what it needs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x7!k2@pq9#vz8$Lm4^Rt6&Yw1*Hc3(Jn5)Bd0_Fg-Ks=Qe+Ua~Ox" * 2,
    "ALLOWED_HOSTS": "console.example.com",
    "SITE_URL": "https://console.example.com",
    "CREDENTIALS_KEYS": Fernet.generate_key().decode(),
}


def run(args, env_overrides, unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset and k not in PRODUCTION}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "syncconsole.settings"
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_passes_with_production_values():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "CREDENTIALS_KEYS", "SITE_URL"])
def test_production_refuses_to_start_without_a_required_value(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def settings_dump(env):
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'q': {k: v for k, v in s.Q_CLUSTER.items() if k in ('orm', 'redis', 'retry', 'timeout', 'catch_up')},"
        " 'db': s.DATABASES['default']['ENGINE'], 'opts': s.DATABASES['default'].get('OPTIONS', {}),"
        " 'age': s.DATABASES['default'].get('CONN_MAX_AGE')}))"
    )
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_orm_broker_and_sqlite_tuning_by_default():
    dump = settings_dump({})
    assert dump["q"]["orm"] == "default" and "redis" not in dump["q"]
    assert dump["q"]["retry"] > dump["q"]["timeout"]
    assert dump["q"]["catch_up"] is False
    assert dump["db"] == "dbbackends.sqlite3"
    assert dump["opts"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in dump["opts"]["init_command"]
    assert "busy_timeout" in dump["opts"]["init_command"]


def test_redis_broker_and_persistent_postgres_connections_from_the_environment():
    dump = settings_dump(
        {"REDIS_URL": "redis://127.0.0.1:6379/3", "DATABASE_URL": "postgres://u@127.0.0.1:5432/somedb"}
    )
    assert dump["q"]["redis"] == "redis://127.0.0.1:6379/3" and "orm" not in dump["q"]
    assert dump["db"] == "django.db.backends.postgresql"
    assert dump["age"] and dump["age"] > 0


def test_sqlite_really_runs_in_wal_mode(tmp_path):
    code = (
        "import django; django.setup(); from django.db import connection; c = connection.cursor(); "
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])"
    )
    result = run(["-c", code], {"DATABASE_URL": f"sqlite:///{tmp_path / 'wal.sqlite3'}"})
    assert result.stdout.strip().splitlines()[-1] == "wal", result.stderr
