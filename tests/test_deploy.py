"""The deployment files: the Procfile, the systemd units, the gunicorn configuration, the environment example."""

import configparser
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from syncconsole import settings as production_settings
from tests.plugins.qcluster import database_url
from tests.test_settings import PRODUCTION

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
UNITS = ROOT / "deploy" / "systemd"
REQUIRED = production_settings._PRODUCTION_NEEDS


def processes():
    """{process type: (environment assignments, argv)} from the Procfile."""
    found = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        words = shlex.split(command)
        assignments = {}
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            key, _, value = words.pop(0).partition("=")
            assignments[key] = value
        found[name.strip()] = (assignments, words)
    return found


def clean_environment(**values):
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith(("GUNICORN_", "REDIS_"))}
    return {**env, **values}


def test_the_procfile_runs_web_worker_and_urgent_worker_with_real_commands():
    found = processes()
    assert set(found) == {"web", "worker", "urgent-worker"}
    commands = get_commands()
    for name, (assignments, argv) in found.items():
        if argv[0] == "gunicorn":
            config = argv[argv.index("--config") + 1]
            assert (ROOT / config).is_file(), config
            assert find_spec(argv[-1]) is not None and argv[-1] == settings.WSGI_APPLICATION.rsplit(".", 1)[0]
        else:
            assert argv[:2] == ["python", "manage.py"], name
            assert argv[2] in commands, f"{name}: no management command {argv[2]!r}"
    assert found["worker"] == ({}, ["python", "manage.py", "qcluster"])
    urgent_env, urgent_argv = found["urgent-worker"]
    assert urgent_argv == ["python", "manage.py", "qcluster"]
    assert urgent_env == {"Q_CLUSTER_NAME": settings.URGENT_CLUSTER}
    assert settings.URGENT_CLUSTER in settings.Q_CLUSTER["ALT_CLUSTERS"]


def read_unit(path):
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read(path)
    return unit


@pytest.mark.parametrize(
    "unit, process",
    [
        ("syncconsole-web.service", "web"),
        ("syncconsole-worker.service", "worker"),
        ("syncconsole-urgent-worker.service", "urgent-worker"),
    ],
)
def test_each_systemd_unit_runs_its_procfile_command_as_a_dedicated_user(unit, process):
    service = read_unit(UNITS / unit)["Service"]
    assignments, argv = processes()[process]
    exec_start = shlex.split(service["ExecStart"])
    assert Path(exec_start[0]).name == Path(argv[0]).name and exec_start[1:] == argv[1:]
    assert service["User"] == service["Group"] == "syncconsole"
    assert service["EnvironmentFile"] == "/etc/syncconsole/syncconsole.env"
    assert service["Restart"] == "always" and int(service["RestartSec"]) > 0
    assert service["KillMode"] == "mixed" and int(service["TimeoutStopSec"]) > 0
    assert service["NoNewPrivileges"] == "true" and service["ProtectSystem"] == "strict"
    environment = dict(item.split("=", 1) for item in shlex.split(service.get("Environment", "")))
    assert environment == assignments
    assert read_unit(UNITS / unit)["Install"]["WantedBy"] == "syncconsole.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path):
    """`systemd-analyze verify` on copies pointing at this checkout: unknown keys and missing programs fail it."""
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/etc/syncconsole/syncconsole.env", str(ROOT / "deploy/syncconsole.env.example"))
        (tmp_path / unit.name).write_text(text.replace("/opt/syncconsole", str(ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def gunicorn(*args, env):
    return subprocess.run(
        [str(GUNICORN), *args, "--config", "deploy/gunicorn.conf.py", "syncconsole.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gunicorn_loads_the_config_and_the_application_with_production_settings():
    result = gunicorn("--check-config", env=clean_environment(**PRODUCTION))
    assert result.returncode == 0, result.stderr

    # The check loads the application itself: a production setting missing fails it.
    without_key = clean_environment(**{k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"})
    result = gunicorn("--check-config", env=without_key)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_gunicorn_settings_come_from_the_environment():
    defaults = gunicorn("--print-config", env=clean_environment(**PRODUCTION))
    assert defaults.returncode == 0, defaults.stderr
    assert re.search(rf"^workers\s+= {2 * (os.cpu_count() or 1) + 1}$", defaults.stdout, re.M)
    assert re.search(r"^bind\s+= \['127.0.0.1:8000'\]$", defaults.stdout, re.M)
    assert re.search(r"^logger_class\s+= syncconsole.access_log.AccessLogger$", defaults.stdout, re.M)

    overridden = gunicorn(
        "--print-config",
        env=clean_environment(
            **PRODUCTION,
            GUNICORN_WORKERS="7",
            GUNICORN_BIND="0.0.0.0:9000",
            GUNICORN_TIMEOUT="90",
            FORWARDED_ALLOW_IPS="10.0.0.10",
            RUNTIME_DIRECTORY="/run/syncconsole-web",
        ),
    )
    assert overridden.returncode == 0, overridden.stderr
    for expected in (
        r"^workers\s+= 7$",
        r"^bind\s+= \['0.0.0.0:9000'\]$",
        r"^timeout\s+= 90$",
        r"^forwarded_allow_ips\s+= \['10.0.0.10'\]$",
        r"^control_socket\s+= /run/syncconsole-web/gunicorn.ctl$",
    ):
        assert re.search(expected, overridden.stdout, re.M), expected


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(tmp_path, **env):
    """A real gunicorn with deploy/gunicorn.conf.py, in development mode on this test's database: its base URL."""
    settings_dict = connection.settings_dict
    url = database_url(settings_dict) if connection.vendor == "postgresql" else f"sqlite:///{settings_dict['NAME']}"
    port = free_port()
    environment = clean_environment(DEBUG="on", DATABASE_URL=url, GUNICORN_BIND=f"127.0.0.1:{port}", **env)
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [str(GUNICORN), "--config", "deploy/gunicorn.conf.py", "syncconsole.wsgi"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gunicorn.err").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5)
                break
            except urllib.error.URLError:
                assert server.poll() is None, (tmp_path / "gunicorn.err").read_text()
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def get(url, **headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError:
        return ""  # whatever the page answers, the access log has its line


@pytest.mark.django_db
def test_the_access_log_never_holds_a_links_token(tmp_path):
    """The tokens of re-authentication, password-reset and unsubscribe links, in the path and in the
    referrer, are masked; the request id is there."""
    log = tmp_path / "access.log"
    with served(tmp_path, GUNICORN_WORKERS="1", GUNICORN_ACCESS_LOG=str(log)) as base:
        get(f"{base}/reauth/ReauthToken0123456789abcdef/", Referer=f"{base}/reauth/RefererToken0123456789abc/")
        get(f"{base}/portal/password-reset/MQ/c3v2k1-ResetToken0123456789/")
        get(f"{base}/alerts/unsubscribe/UnsubscribeToken0123456789:1abc:xyz/")
        deadline = time.monotonic() + 10
        while len(log.read_text().splitlines()) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)

    text = log.read_text()
    assert len(text.splitlines()) == 4  # the readiness poll, then the three links
    for token in ("ReauthToken0123456789abcdef", "RefererToken0123456789abc", "ResetToken0123456789", "UnsubscribeToken"):
        assert token not in text
    assert '"GET /reauth/[redacted]/ HTTP/1.1"' in text and f'"{base}/reauth/[redacted]/"' in text
    assert '"GET /portal/password-reset/MQ/[redacted]/ HTTP/1.1"' in text
    assert '"GET /alerts/unsubscribe/[redacted]/ HTTP/1.1"' in text
    assert re.search(r"request_id=[0-9a-f]{32}$", text.splitlines()[-1])


@pytest.mark.django_db
def test_the_web_workers_add_up_their_metrics_in_a_directory_of_each_start(tmp_path):
    """prometheus_client's multiprocess mode without any setting: every worker's requests in /metrics."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    with served(tmp_path, GUNICORN_WORKERS="3", RUNTIME_DIRECTORY=str(runtime)) as base:
        for _ in range(12):
            get(f"{base}/portal/login/")
        (directory,) = runtime.glob("prometheus-*")
        assert list(directory.glob("histogram_*.db"))
        for _ in range(3):  # whichever worker answers
            samples = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(get(f"{base}/metrics"))
                for sample in family.samples
            }
            key = ("syncconsole_http_request_duration_seconds_count", (("method", "GET"), ("route", "/portal/login/"), ("status", "200")))
            assert samples[key] == 12
    assert not directory.exists()  # removed when gunicorn stopped


def test_the_environment_example_holds_every_required_setting_and_passes_the_deploy_check():
    """deploy/manage.sh reads it as the units do; Django's deployment checks pass with it."""
    example = ROOT / "deploy" / "syncconsole.env.example"
    names = {line.split("=", 1)[0] for line in example.read_text().splitlines() if re.match(r"^[A-Z_]+=", line)}
    assert set(REQUIRED) <= names
    env = {"PATH": os.environ["PATH"], "SYNCCONSOLE_ENV": str(example)}
    result = subprocess.run(
        ["sh", "deploy/manage.sh", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_md_names_every_required_setting_and_the_files_it_describes():
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    for name in REQUIRED:
        assert f"`{name}`" in text, name
    for path in ("Procfile", "deploy/gunicorn.conf.py", "deploy/syncconsole.env.example", "deploy/manage.sh"):
        assert path in text and (ROOT / path).exists(), path
    for unit in UNITS.iterdir():
        assert unit.name in text, unit.name


def test_a_previous_secret_key_keeps_what_it_signed_while_it_is_a_fallback():
    """SECRET_KEY_FALLBACKS, read from the environment: a rotation need not sign everyone out."""
    sign = "import django; django.setup(); from django.core import signing; print(signing.dumps('page 2', salt='cursor'))"
    check = (
        "import django, sys; django.setup(); from django.core import signing\n"
        "try:\n    print(signing.loads(sys.argv[1], salt='cursor'))\n"
        "except signing.BadSignature:\n    print('refused')"
    )

    def run(code, *args, **env):
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", code, *args],
            cwd=ROOT,
            env=clean_environment(DEBUG="on", DJANGO_SETTINGS_MODULE="syncconsole.settings", **env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    old, new = "old-" + "k" * 60, "new-" + "q" * 60
    token = run(sign, SECRET_KEY=old)
    assert run(check, token, SECRET_KEY=new, SECRET_KEY_FALLBACKS="") == "refused"
    assert run(check, token, SECRET_KEY=new, SECRET_KEY_FALLBACKS=old) == "page 2"
