"""Pytest plugin: a real Radicale CardDAV server as a subprocess on loopback.

``RadicaleProcess`` writes a configuration into a temporary folder (htpasswd
users with SHA-256 crypt hashes, ``rights type = owner_only``, multifilesystem
storage in the same folder), starts ``python -m radicale`` on 127.0.0.1 with a
free port, and waits until it answers. Radicale's log (one "<METHOD> request
for '<path>'" line per request at level info) is kept in a file and can be
read back as an access log. ``stop()`` ends the process and keeps the storage,
so ``start()`` brings the same data back on the same port.

It also speaks enough CardDAV to fill and inspect address books (MKCOL, PUT,
GET), and ``make_vcard`` builds vCards for tests and the benchmark.

The ``radicale_server`` fixture is one server for a test module; tests give
their users distinct names (``new_user``) so that their data never meet.
"""

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
_REQUEST_RE = re.compile(r"\] ([A-Z]+) request for '([^']*)'")
_users = itertools.count(1)

ADDRESSBOOK_MKCOL = """<?xml version="1.0" encoding="utf-8"?>
<d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav">
  <d:set><d:prop>
    <d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype>
    <d:displayname>{name}</d:displayname>
  </d:prop></d:set>
</d:mkcol>"""

SYNC_COLLECTION = """<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:">
  <d:sync-token/><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop>
</d:sync-collection>"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _escape(value):
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def make_vcard(uid, *, given="", family="", fn=None, emails=(), phones=(), org="", categories=(), note=""):
    """A vCard 3.0 text; an empty `family` leaves the N family part out."""
    fn = fn if fn is not None else " ".join(part for part in (given, family) if part) or uid
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{uid}",
        f"FN:{_escape(fn)}",
        f"N:{_escape(family)};{_escape(given)};;;",
    ]
    lines += [f"EMAIL;TYPE=INTERNET:{email}" for email in emails]
    lines += [f"TEL;TYPE=CELL:{phone}" for phone in phones]
    if org:
        lines.append(f"ORG:{_escape(org)}")
    if categories:
        lines.append("CATEGORIES:" + ",".join(_escape(c) for c in categories))
    if note:
        lines.append(f"NOTE:{_escape(note)}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def _hash_password(password):
    # Radicale depends on passlib (libpass); few rounds keep logins cheap.
    from passlib.hash import sha256_crypt

    return sha256_crypt.using(rounds=1000).hash(password)


class RadicaleProcess:
    """One Radicale server with its own configuration, users and storage folder."""

    def __init__(self, *, root=None, port=None, auth_delay=0.05, startup_timeout=30, log_level="info"):
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="radicale-"))
        self.port = port
        self.auth_delay = auth_delay
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.users = {}
        self.process = None
        self._log_file = None
        self._http = requests.Session()
        self.htpasswd_path.touch()

    # -- files ---------------------------------------------------------------

    @property
    def htpasswd_path(self):
        return self.root / "users"

    @property
    def config_path(self):
        return self.root / "config"

    @property
    def storage_path(self):
        return self.root / "collections"

    @property
    def log_path(self):
        return self.root / "radicale.log"

    def write_config(self):
        self.config_path.write_text(
            f"""[server]
hosts = 127.0.0.1:{self.port}
max_connections = 20

[auth]
type = htpasswd
htpasswd_filename = {self.htpasswd_path}
htpasswd_encryption = sha256
delay = {self.auth_delay}

[rights]
type = owner_only

[storage]
filesystem_folder = {self.storage_path}

[web]
type = none

[logging]
level = {self.log_level}
"""
        )

    def add_user(self, username, password):
        """Add (or change) an htpasswd user; Radicale reads the file at each login."""
        self.users[username] = password
        lines = [f"{name}:{_hash_password(secret)}" for name, secret in self.users.items()]
        self.htpasswd_path.write_text("\n".join(lines) + "\n")
        return username

    def new_user(self, prefix="user", password="secret"):
        """A user no other test has, with an address book folder of its own."""
        return self.add_user(f"{prefix}{os.getpid()}x{next(_users)}", password)

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        """Start the server (on the port it had before, if any) and wait until it answers."""
        if self.running:
            return self
        if self.port:
            return self._start()
        for attempt in range(3):
            # The free port may be taken before Radicale binds it: try another.
            self.port = free_port()
            try:
                return self._start()
            except RuntimeError:
                self.port = None
                if attempt == 2:
                    raise
        return self

    def _start(self):
        self.write_config()
        self._log_file = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if k != "RADICALE_CONFIG"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(self.config_path)],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            env=env,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"Radicale did not start on port {self.port}. Its log:\n{log[-4000:]}")

    def stop(self):
        """Terminate the server (kill it if it lingers); the storage and the port stay."""
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
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def cleanup(self):
        """Stop, and remove the folder if this object made it."""
        self.stop()
        self._http.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()

    # -- the access log --------------------------------------------------------

    def log(self):
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def log_offset(self):
        """Where the log ends now: pass it to `requests_since` to see what came after."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def requests_since(self, offset=0):
        """[(method, path)] of the requests Radicale received since `offset`."""
        with open(self.log_path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        return _REQUEST_RE.findall(text)

    # -- CardDAV as a client ----------------------------------------------------

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def book_path(self, user, book="contacts"):
        return f"/{user}/{book}/"

    def card_url(self, user, book, name):
        return urljoin(self.url, f"{self.book_path(user, book)}{name}")

    def _auth(self, user):
        return (user, self.users[user])

    def create_addressbook(self, user, book="contacts", displayname=None):
        response = self._http.request(
            "MKCOL",
            urljoin(self.url, self.book_path(user, book)),
            data=ADDRESSBOOK_MKCOL.format(name=displayname or book).encode(),
            headers={"Content-Type": "application/xml; charset=utf-8"},
            auth=self._auth(user),
            timeout=10,
        )
        if response.status_code != 201:
            raise RuntimeError(f"MKCOL {book} answered {response.status_code}: {response.text[:300]}")
        return self.book_path(user, book)

    def seed_addressbook(self, user, book, cards, displayname=None):
        """Write an address book straight into Radicale's storage layout.

        For big books: a PUT of a new contact makes Radicale scan the whole
        collection for UID clashes, so thousands of PUTs take minutes. The
        files are what Radicale itself writes (``collection-root/<user>/<book>/``
        with ``.Radicale.props`` and one ``<name>.vcf`` per contact); Radicale
        reads the folder at each request, running or not.
        """
        folder = self.storage_path / "collection-root" / user / book
        folder.mkdir(parents=True, exist_ok=True)
        props = {"D:displayname": displayname or book, "tag": "VADDRESSBOOK"}
        (folder / ".Radicale.props").write_text(json.dumps(props))
        for name, text in cards:
            (folder / name).write_bytes(text.encode())
        if self.running:
            self.warm(user, book)
        return self.book_path(user, book)

    def warm(self, user, book, timeout=600):
        """Have Radicale build its item cache and sync history for a book written to disk.

        A PUT builds them one contact at a time; for files written straight
        to the folder the first listing builds them all, which takes Radicale
        several milliseconds a contact. Returns the seconds it took.
        """
        started = time.monotonic()
        response = self._http.request(
            "REPORT",
            urljoin(self.url, self.book_path(user, book)),
            data=SYNC_COLLECTION.encode(),
            headers={"Content-Type": "application/xml; charset=utf-8", "Depth": "0"},
            auth=self._auth(user),
            timeout=timeout,
        )
        if response.status_code != 207:
            raise RuntimeError(f"Listing {book} answered {response.status_code}: {response.text[:300]}")
        return time.monotonic() - started

    def put_vcard(self, user, book, name, text, *, if_match=None, create_only=False):
        """PUT one vCard; returns the response (201/204 when stored)."""
        headers = {"Content-Type": "text/vcard; charset=utf-8"}
        if if_match:
            headers["If-Match"] = if_match
        if create_only:
            headers["If-None-Match"] = "*"
        url = self.card_url(user, book, name)
        return self._http.put(url, data=text.encode(), headers=headers, auth=self._auth(user), timeout=10)

    def fill(self, user, book, cards):
        """PUT each (name, vCard text); raises on the first that is not stored."""
        for name, text in cards:
            response = self.put_vcard(user, book, name, text)
            if response.status_code not in (201, 204):
                raise RuntimeError(f"PUT {name} answered {response.status_code}: {response.text[:300]}")

    def get_vcard(self, user, book, name):
        """(vCard text, ETag) of one contact."""
        response = self._http.get(self.card_url(user, book, name), auth=self._auth(user), timeout=10)
        response.raise_for_status()
        return response.text, response.headers.get("ETag", "")

    def categories(self, user, book, name):
        """The CATEGORIES values of one contact, as Radicale stores it."""
        import vobject

        text, _ = self.get_vcard(user, book, name)
        card = vobject.readOne(text)
        return [value for line in card.contents.get("categories", []) for value in line.value]


@pytest.fixture(scope="module")
def radicale_server():
    """A Radicale server shared by a test module; tests create users of their own."""
    with RadicaleProcess() as server:
        yield server
