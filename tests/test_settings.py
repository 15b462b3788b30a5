"""Settings come from the environment; production refuses to start without what it needs."""

import os
import shutil
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
    "DATABASE_URL": "postgres://syncconsole@db.internal:5432/syncconsole",
    "EMAIL_URL": "smtp+tls://alerts:secret@smtp.example.com:587",
}
DEVELOPMENT = {"DEBUG": "on"}


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


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "ALLOWED_HOSTS", "CREDENTIALS_KEYS", "SITE_URL", "DATABASE_URL", "EMAIL_URL"]
)
def test_production_refuses_to_start_without_a_required_value(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_without_any_environment_the_process_is_in_production_and_names_what_it_lacks():
    """`env -i python manage.py check`: DEBUG unset is production, never the development defaults."""
    result = subprocess.run(
        ["env", "-i", sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL", "CREDENTIALS_KEYS", "DATABASE_URL", "EMAIL_URL"):
        assert name in result.stderr
    assert "DEBUG=on" in result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ({"DATABASE_URL": "sqlite:////tmp/production.sqlite3"}, "production needs PostgreSQL"),
        ({"EMAIL_URL": "consolemail://"}, "EMAIL_URL must name an SMTP server"),
    ],
    ids=["sqlite", "console-email"],
)
def test_production_refuses_development_backends(override, message):
    result = run(["manage.py", "check"], {**PRODUCTION, **override})
    assert result.returncode != 0
    assert message in result.stderr


def test_development_mode_from_a_dotenv_file(tmp_path):
    """A `.env` beside manage.py switches development on for people running manage.py by hand."""
    code = "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG, s.DATABASES['default']['ENGINE'])"
    project = tmp_path / "project"
    shutil.copytree(ROOT / "syncconsole", project / "syncconsole")  # BASE_DIR is where settings.py is
    for entry in ROOT.iterdir():  # every app and the rest, as they are
        if entry.name not in ("syncconsole", ".env") and not entry.name.startswith((".", "db.sqlite3")):
            (project / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env["DJANGO_SETTINGS_MODULE"] = "syncconsole.settings"

    refused = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "ImproperlyConfigured" in refused.stderr

    (project / ".env").write_text("DEBUG=on\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "dbbackends.sqlite3"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({}, max(2, os.cpu_count() or 1)), ({"Q_URGENT_WORKERS": "7"}, 7)],
    ids=["sized for the machine", "set"],
)
def test_urgent_workers_are_sized_for_the_machine_unless_set(overrides, expected):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.Q_CLUSTER['ALT_CLUSTERS']['urgent']['workers'])"
    )
    result = run(["-c", code], {**DEVELOPMENT, **overrides}, unset=("Q_URGENT_WORKERS",))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(expected)]
