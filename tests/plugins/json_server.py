"""Pytest plugin: json-server 0.17.4 (npm) as a real third-party REST peer on loopback.

json-server serves each top-level key of a JSON file as a resource: a plain
JSON array, `?_page=N&_limit=M` pages with an RFC 8288 `Link` header
(first/prev/next/last) and `X-Total-Count`, `?_start=S&_limit=M` slices (the
total too), `field_gte=` / `field_lte=` filters, and POST/PATCH writes that
it keeps in the file. Nobody here wrote it, so it shows the `rest`
connector meeting an API as someone else shaped it.

The package is pinned in tests/peers/package.json (`make install-dev` runs
`npm ci --prefix tests/peers`). Without node or the package the tests skip,
saying so; CI passes `--require=jsonserver`, which turns that skip into a
failure (tests/conftest.py).

``JsonServerProcess`` writes `db.json` (`make_db`) into a folder of its own,
starts `node .../json-server/lib/cli/bin.js` on 127.0.0.1 with a free port,
waits until it answers, and keeps its access log (one morgan line per request,
`GET /contacts?_page=2&_limit=100 200 ...`) in a file that `requests_since`
reads back. The ``json_server`` fixture (registered in tests/conftest.py) is
one server for the whole session: tests only read `contacts`; `companies` is
the incremental test's to write.
"""

import json
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.plugins.radicale import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS = REPO_ROOT / "tests" / "peers"
CLI = PEERS / "node_modules" / "json-server" / "lib" / "cli" / "bin.js"
VERSION = "0.17.4"

CONTACTS = 1234
COMPANIES = 40
# `products` has ids in text order (p-0001, ...), as page fingerprints need.
PRODUCTS = 250
# Contacts whose email is not an address (the `rest` connector's rules.email_fields finds them).
BAD_EMAILS = {
    7: "no-at-sign.example",
    99: "two@@example.com",
    250: "spaces in@example.com",
    512: "nodot@localhost",
    777: "@example.com",
    1001: "trailing@",
    1234: "ann@example",
}
# An empty email is not an invalid one (required_fields is the rule for that).
EMPTY_EMAILS = {300, 301}
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ACCESS = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) (\d{3}) ", re.MULTILINE)


def stamp(moment):
    """A time as json-server's rows hold it; `_gte` filters compare these strings."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def make_db():
    """The resources: `contacts` (CONTACTS rows, BAD_EMAILS among them), `companies` and `products`."""
    contacts = []
    for n in range(1, CONTACTS + 1):
        email = BAD_EMAILS.get(n, "" if n in EMPTY_EMAILS else f"contact{n}@example.com")
        contacts.append(
            {
                "id": n,
                "name": f"Contact {n}",
                "email": email,
                "companyId": n % COMPANIES + 1,
                "updatedAt": stamp(EPOCH + timedelta(hours=n)),
            }
        )
    companies = [
        {"id": n, "name": f"Company {n}", "updatedAt": stamp(EPOCH + timedelta(days=n))}
        for n in range(1, COMPANIES + 1)
    ]
    products = [{"id": f"p-{n:04d}", "name": f"Product {n}", "price": n * 5} for n in range(1, PRODUCTS + 1)]
    return {"contacts": contacts, "companies": companies, "products": products}


def missing_reason():
    """Why json-server cannot run here, or None."""
    if shutil.which("node") is None:
        return "needs node (20) for json-server; install Node.js, then `make install-dev`"
    if not CLI.exists():
        return (
            f"needs json-server {VERSION} in {PEERS}/node_modules: "
            "run `make install-dev` (npm ci --prefix tests/peers)"
        )
    return None


class JsonServerProcess:
    """One json-server with its own db.json and access log."""

    def __init__(self, db=None, *, startup_timeout=30):
        self.root = Path(tempfile.mkdtemp(prefix="json-server-"))
        self.db = make_db() if db is None else db
        self.startup_timeout = startup_timeout
        self.port = None
        self.process = None
        self._log_file = None
        self._http = requests.Session()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self):
        return self.root / "db.json"

    @property
    def log_path(self):
        return self.root / "json-server.log"

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        self.db_path.write_text(json.dumps(self.db))
        for attempt in range(3):
            # The free port may be taken before node binds it: try another.
            self.port = free_port()
            try:
                return self._start()
            except RuntimeError:
                if attempt == 2:
                    raise
        return self

    def _start(self):
        self._log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                shutil.which("node"),
                str(CLI),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                str(self.db_path),
            ],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self._http.get(f"{self.url}/companies", params={"id": "1"}, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"json-server did not start on port {self.port}. Its output:\n{log[-4000:]}")

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
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()

    # -- the access log ----------------------------------------------------------

    def log(self):
        return (
            _ANSI.sub("", self.log_path.read_bytes().decode("utf-8", "replace"))
            if self.log_path.exists()
            else ""
        )

    def log_offset(self):
        """Where the log ends now: pass it to `requests_since`."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def requests_since(self, offset=0, *, method=None, at_least=0, timeout=5):
        """[(method, path with query, status)] json-server logged since `offset` (only `method`'s if given).

        json-server logs a request once its answer is sent, so a line may
        come just after the client has the answer: `at_least` waits for that
        many lines (up to `timeout` seconds).
        """
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                text = _ANSI.sub("", handle.read().decode("utf-8", "replace"))
            found = [
                (verb, target, int(status))
                for verb, target, status in _ACCESS.findall(text)
                if method in (None, verb)
            ]
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    # -- the REST API as a client -------------------------------------------------------

    def get(self, path, **params):
        response = self._http.get(urljoin(self.url, path), params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, resource, row):
        response = self._http.post(f"{self.url}/{resource}", json=row, timeout=10)
        if response.status_code != 201:
            raise RuntimeError(f"POST /{resource} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def delete(self, resource, row_id):
        response = self._http.delete(f"{self.url}/{resource}/{row_id}", timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"DELETE /{resource}/{row_id} answered {response.status_code}: {response.text[:300]}")

    def patch(self, resource, row_id, changes):
        response = self._http.patch(f"{self.url}/{resource}/{row_id}", json=changes, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(
                f"PATCH /{resource}/{row_id} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json()


@pytest.fixture(scope="session")
def json_server():
    """One json-server for the session (skips, naming what is missing, without node or the package)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with JsonServerProcess() as server:
        yield server
