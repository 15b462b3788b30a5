"""Pytest plugin: a real Xandikos CardDAV server as a subprocess on loopback.

Xandikos is a second CardDAV server, written independently of Radicale (it
keeps each collection in a Git repository). ``XandikosProcess`` runs
``python -m xandikos.web --autocreate`` on 127.0.0.1 with a free port and a
data folder of its own, and waits until it answers. It serves one user,
without authentication: the principal is ``/user/`` and its address book
home ``/user/contacts/``. Its log (one access line per request) is kept in a
file.

The ``xandikos_server`` fixture is one fresh server for each test: discovery
lists every address book of its only user, so tests must not share one.
A server that does not start fails the test; it is never skipped.
"""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.plugins.radicale import ADDRESSBOOK_MKCOL, free_port

HOME = "/user/contacts/"


class XandikosProcess:
    """One Xandikos server with its own data folder."""

    def __init__(self, *, root=None, startup_timeout=30):
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="xandikos-"))
        self.port = None
        self.startup_timeout = startup_timeout
        self.process = None
        self._log_file = None
        self._http = requests.Session()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log_path(self):
        return self.root / "xandikos.log"

    def log(self):
        return self.log_path.read_bytes().decode("utf-8", "replace") if self.log_path.exists() else ""

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        for attempt in range(3):
            # The free port may be taken before Xandikos binds it: try another.
            self.port = free_port()
            try:
                return self._start()
            except RuntimeError:
                if attempt == 2:
                    raise
        return self

    def _start(self):
        self._log_file = open(self.log_path, "ab")
        command = [
            sys.executable, "-m", "xandikos.web", "--autocreate",
            "--directory", str(self.root / "data"), "--state-dir", str(self.root / "state"),
            "--listen-address", "127.0.0.1", "--port", str(self.port), "--no-detect-systemd",
        ]
        self.process = subprocess.Popen(
            command, cwd=self.root, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self._http.request("PROPFIND", self.url + "user/", headers={"Depth": "0"}, timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"Xandikos did not start on port {self.port}. Its log:\n{log[-4000:]}")

    def stop(self):
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self):
        self.stop()
        self._http.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()

    # -- CardDAV as a client -----------------------------------------------------

    def book_path(self, book="contacts"):
        return f"{HOME}{book}/"

    def create_addressbook(self, book="contacts", displayname=None):
        """An address book in the user's home (extended MKCOL, as Radicale's)."""
        response = self._http.request(
            "MKCOL",
            urljoin(self.url, self.book_path(book)),
            data=ADDRESSBOOK_MKCOL.format(name=displayname or book).encode(),
            headers={"Content-Type": "application/xml; charset=utf-8"},
            timeout=10,
        )
        if response.status_code != 201:
            raise RuntimeError(f"MKCOL {book} answered {response.status_code}: {response.text[:300]}")
        return self.book_path(book)


@pytest.fixture
def xandikos_server():
    """A fresh Xandikos server for one test."""
    with XandikosProcess() as server:
        yield server
