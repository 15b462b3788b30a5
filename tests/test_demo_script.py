"""scripts/demo.py's environment, built without starting a server: links follow DEMO_PORT, emails go to the outbox.

The end-to-end check runs `manage.py send_test_email` with the demo's
environment in a process of its own, as `make demo` runs its processes, and
reads the message the outbox kept.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncconsole import outbox

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines; starts nothing (main() runs only as a script)
    return module


def base_environment(**extra):
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")
    return {**{k: v for k, v in os.environ.items() if k in keep}, "DEBUG": "on", **extra}


def test_links_follow_demo_port_and_host(demo):
    config = demo.DemoConfig.from_environment({"DEMO_PORT": "8123", "SIMULATOR_PORT": "9765", "RADICALE_PORT": "6232"})

    env = demo.demo_environment(config, {"PATH": "/usr/bin"})

    assert env["SITE_URL"] == "http://127.0.0.1:8123"
    assert env["VENDOR_SIMULATOR_URL"] == "http://127.0.0.1:9765"
    assert env["EMAIL_URL"] == "filemail:///var/outbox"
    assert env["LOG_LEVEL"] == "WARNING"  # routine lines would scroll the addresses away
    assert env["PATH"] == "/usr/bin"
    anywhere = demo.DemoConfig.from_environment({"DEMO_HOST": "0.0.0.0", "DEMO_PORT": "9000"})
    assert anywhere.site_url == "http://127.0.0.1:9000"  # a link must lead somewhere from this machine
    assert demo.DemoConfig.from_environment({}).site_url == "http://127.0.0.1:8000"


def test_what_the_caller_gives_wins(demo):
    config = demo.DemoConfig.from_environment({"DEMO_PORT": "8123"})

    env = demo.demo_environment(
        config, {"SITE_URL": "https://demo.example", "EMAIL_URL": "smtp://127.0.0.1:1025", "LOG_LEVEL": "INFO"}
    )

    assert (env["SITE_URL"], env["EMAIL_URL"], env["LOG_LEVEL"]) == (
        "https://demo.example", "smtp://127.0.0.1:1025", "INFO"
    )


def test_the_terminal_shows_the_urls_and_logins(demo):
    config = demo.DemoConfig.from_environment({"DEMO_PORT": "8123"})
    text = demo.banner(config, demo.demo_environment(config, {}))

    for line in (
        "Support console   http://127.0.0.1:8123/admin/          login admin / admin",
        "Customer portal   http://127.0.0.1:8123/portal/         login customer / customer",
        "Outbox            http://127.0.0.1:8123/admin/outbox/  (emails are kept there, not sent)",
        "Vendor simulator  http://127.0.0.1:8765/health   API key good-key",
    ):
        assert line in text
    assert "good-key" in text.split("Ingram Micro", 1)[1]
    assert len(text.splitlines()) < 25


def test_the_demo_environment_makes_the_settings_keep_emails_in_the_outbox(demo):
    env = demo.demo_environment(demo.DemoConfig.from_environment({"DEMO_PORT": "8123"}), base_environment())
    script = "from django.conf import settings; print(settings.SITE_URL, settings.EMAIL_BACKEND, settings.EMAIL_FILE_PATH)"

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )

    assert result.stdout.split() == ["http://127.0.0.1:8123", outbox.BACKEND, str(ROOT / "var" / "outbox")]


def test_an_email_sent_in_the_demo_links_to_demo_port_and_lands_in_the_outbox(demo, tmp_path, settings):
    config = demo.DemoConfig.from_environment({"DEMO_PORT": "8123"})
    folder = tmp_path / "outbox"
    env = demo.demo_environment(
        config, base_environment(EMAIL_URL=f"filemail:///{folder}", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "send_test_email", "ops@acme.example"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "Content-Type" not in result.stdout + result.stderr  # no raw email in the terminal
    settings.EMAIL_BACKEND, settings.EMAIL_FILE_PATH = outbox.BACKEND, str(folder)
    (message,) = outbox.list_messages()
    whole = outbox.read_message(folder / message.name)
    assert message.recipients == ["ops@acme.example"]
    assert "http://127.0.0.1:8123/portal/" in whole.links
    assert not [link for link in whole.links if ":8000" in link]
