"""Pytest plugin: the vendor simulator as a live HTTP server process.

``SimulatorProcess`` runs ``manage.py vendor_simulator --port 0`` in a
subprocess and learns the port from the first stdout line. The
session-scoped ``vendor_simulator`` fixture yields one started process; tests
give their accounts a label (``healthy.t-auth``) so that their overrides do
not meet.
"""

import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
_LISTENING_RE = re.compile(r"^Vendor simulator listening on (http://\S+?):(\d+)\s*$")


class SimulatorProcess:
    """One vendor simulator server process."""

    def __init__(self, slow_seconds=3, token_ttl=None, seed=None, page_size=None,
                 max_page_size=None, extra_args=(), startup_timeout=30):
        self.slow_seconds = slow_seconds
        self.token_ttl = token_ttl
        self.seed = seed
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process = None
        self.port = None
        self._base_url = None
        self._log_path = None
        self._log_file = None
        self._http = requests.Session()

    # -- lifecycle ---------------------------------------------------------

    def command(self):
        command = [
            sys.executable, "manage.py", "vendor_simulator",
            "--port", "0", "--slow-seconds", str(self.slow_seconds),
        ]
        for option, value in (
            ("--token-ttl", self.token_ttl),
            ("--seed", self.seed),
            ("--page-size", self.page_size),
            ("--max-page-size", self.max_page_size),
        ):
            if value is not None:
                command += [option, str(value)]
        return command + self.extra_args

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        """Start the server and wait for its address. Idempotent."""
        if self.running:
            return self
        self.stop()
        fd, self._log_path = tempfile.mkstemp(prefix="vendor-simulator-", suffix=".log")
        os.close(fd)
        # Opened for appending so that the server's writes never depend on a
        # file offset that reading the log could move.
        self._log_file = open(self._log_path, "ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env=dict(os.environ),
        )
        first_line = []
        reader = threading.Thread(
            target=lambda: first_line.append(self.process.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(self.startup_timeout)
        line = first_line[0].decode("utf-8", "replace") if first_line else ""
        match = _LISTENING_RE.match(line)
        if not match:
            log = self.log()
            self.stop()
            raise RuntimeError(
                "The vendor simulator did not start (first line %r). Its log:\n%s" % (line, log)
            )
        self.port = int(match.group(2))
        self._base_url = "%s:%d" % (match.group(1), self.port)
        return self

    def stop(self):
        """Terminate the server (kill it if it lingers); returns its exit code."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            code = self.process.returncode
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._http.close()
        self._base_url = None
        self.port = None
        return code

    def cleanup(self):
        """Stop, and remove the log file."""
        code = self.stop()
        if self._log_path:
            try:
                os.unlink(self._log_path)
            except FileNotFoundError:
                pass
            self._log_path = None
        return code

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()

    # -- use ---------------------------------------------------------------

    @property
    def base_url(self):
        if self._base_url is None:
            raise RuntimeError("The vendor simulator is not running")
        return self._base_url

    def url(self, path):
        return self.base_url + path

    def log(self):
        """What the server wrote to stderr so far (one line per request)."""
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def _control_url(self, account):
        return self.url("/_control/accounts/%s" % account)

    def control(self, account, **changes):
        """Merge overrides into an account (drop=[...], change=[...],
        recover=True, fail=True, api_key="k"); returns the override state."""
        response = self._http.post(self._control_url(account), json=changes, timeout=10)
        response.raise_for_status()
        return response.json()["overrides"]

    def reset(self, account):
        """Forget an account's overrides and request counters."""
        response = self._http.delete(self._control_url(account), timeout=10)
        response.raise_for_status()
        return response.json()

    def stats(self, account):
        """{"requests": {...counters...}, "overrides": {...}} of an account."""
        response = self._http.get(self._control_url(account), timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def vendor_simulator():
    """A vendor simulator server shared by the test session (slow = 3 s)."""
    process = SimulatorProcess(slow_seconds=3)
    process.start()
    try:
        yield process
    finally:
        process.cleanup()
