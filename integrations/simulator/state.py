"""The vendor simulator's state: per-account overrides and request counters,
accepted keys and OAuth tokens, and the error answers they produce.

``SimulatorServer`` holds it for the whole process; the request handler in
``server.py`` reads and changes it only through the methods here.
"""

import base64
import hashlib
import hmac
import sys
import threading
import time
from collections import OrderedDict
from http.server import ThreadingHTTPServer

from . import scenarios as sc

DEFAULT_SEED = 1
DEFAULT_SLOW_SECONDS = 5.0
DEFAULT_TOKEN_TTL = 3600
DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_PAGE_SIZE = 5000

COUNTER_KEYS = ("items", "item", "accounts", "me", "token", "total")
# The item pages the simulator keeps, as JSON (about 250 KB a page of 1,000).
PAGE_CACHE_BYTES = 64 * 1024 * 1024


class PageCache:
    """The items of the pages served last, as JSON, least recently used out first.

    A vendor serves its lists from storage, not by computing every item on
    every request; so does the simulator for a page it served before with
    the same items (the key says what they depend on). It shares the
    machine's CPUs with the client it serves: what it does not compute
    again is left to the client.
    """

    def __init__(self, max_bytes=PAGE_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.size = 0
        self._pages = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def put(self, key, body):
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key in self._pages:
                return
            self._pages[key] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _key, old = self._pages.popitem(last=False)
                self.size -= len(old)


class ApiError(Exception):
    """An error answer: status, JSON body, extra headers."""

    def __init__(self, status, error, message=None, headers=None):
        super().__init__(error)
        self.status = status
        self.body = {"error": error}
        if message:
            self.body["message"] = message
        self.headers = headers or {}


def unavailable():
    return ApiError(503, "unavailable", "The service is temporarily unavailable")


def _invalid_key():
    return ApiError(401, "invalid_key", "The API key is not valid")


class AccountState:
    """Overrides and counters of one account. Guarded by the server's lock."""

    def __init__(self):
        self.overrides = sc.Overrides()
        self.counters = dict.fromkeys(COUNTER_KEYS, 0)
        self.rate_limited_pages = set()



class SimulatorServer(ThreadingHTTPServer):
    """The simulator's HTTP server and the state every request shares.

    ``handler_class`` is ``server.SimulatorHandler``; ``cli.serve`` builds one.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler_class, *, seed=DEFAULT_SEED, slow_seconds=DEFAULT_SLOW_SECONDS,
                 token_ttl=DEFAULT_TOKEN_TTL, page_size=DEFAULT_PAGE_SIZE,
                 max_page_size=DEFAULT_MAX_PAGE_SIZE):
        super().__init__(address, handler_class)
        self.seed = seed
        self.slow_seconds = max(0.0, float(slow_seconds))
        self.token_ttl = int(token_ttl)
        self.max_page_size = max(1, int(max_page_size))
        self.page_size = min(max(1, int(page_size)), self.max_page_size)
        self.secret = hashlib.sha256(("vendor-simulator-secret:%s" % seed).encode()).digest()
        self.lock = threading.Lock()
        self.accounts = {}
        self.page_cache = PageCache()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        sys.stderr.write("vendor simulator: error handling a request: %r\n" % (exc,))

    # -- account state (all under the lock) ------------------------------

    def _state(self, account):
        state = self.accounts.get(account)
        if state is None:
            state = self.accounts[account] = AccountState()
        return state

    def count(self, account, kind):
        """Count a request; returns the number of earlier requests of that kind."""
        with self.lock:
            counters = self._state(account).counters
            before = counters[kind]
            counters[kind] = before + 1
            counters["total"] += 1
            return before

    def count_unrouted(self, account):
        """Count a request to no known endpoint: only the total."""
        with self.lock:
            self._state(account).counters["total"] += 1

    def overrides(self, account):
        with self.lock:
            return self._state(account).overrides.snapshot()

    def first_time_for_page(self, account, page):
        with self.lock:
            pages = self._state(account).rate_limited_pages
            if page in pages:
                return False
            pages.add(page)
            return True

    def reset(self, account):
        with self.lock:
            self.accounts.pop(account, None)

    def stats(self, account):
        with self.lock:
            state = self._state(account)
            return {"requests": dict(state.counters), "overrides": state.overrides.as_json()}

    def apply_control(self, account, scenario, changes):
        """Merge validated control changes into the account's overrides."""
        with self.lock:
            ov = self._state(account).overrides
            ov.dropped.update(changes.get("drop", ()))
            for index in changes.get("change", ()):
                previous = ov.changed.get(index)
                version = previous.version + 1 if previous else 2
                ov.changed[index] = sc.Change(version, sc.change_instant())
            if "recover" in changes:
                ov.recovered = changes["recover"]
                if changes["recover"]:
                    ov.failed = False
            if "fail" in changes:
                ov.failed = changes["fail"]
            if "api_key" in changes:
                ov.api_key = changes["api_key"]
            return ov.as_json()

    # -- credentials -----------------------------------------------------

    def accepted_keys(self, scenario, ov):
        if ov.api_key is not None:
            return (ov.api_key,)
        if scenario.kind in ("expired-token", "invalid-key"):
            return (sc.ROTATED_KEY, sc.GOOD_KEY) if ov.recovered else (sc.ROTATED_KEY,)
        return (sc.GOOD_KEY,)

    def check_key(self, scenario, ov, key, *, oauth=False):
        """None when the key is accepted, else the ApiError to answer."""
        for accepted in self.accepted_keys(scenario, ov):
            if hmac.compare_digest(key.encode(), accepted.encode()):
                return None
        kind = sc.effective_kind(scenario, ov)
        if ov.api_key is None and key == sc.EXPIRED_KEY:
            what = "client secret" if oauth else "API key"
            return ApiError(401, "token_expired", "The %s has expired" % what)
        if ov.api_key is None and key == sc.REVOKED_KEY and not oauth:
            return ApiError(401, "invalid_key", "The API key has been revoked")
        if ov.api_key is None and key == sc.GOOD_KEY:
            if kind == "expired-token":
                what = "client secret" if oauth else "API key"
                return ApiError(401, "token_expired", "The %s has expired" % what)
            if kind == "invalid-key" and not oauth:
                return ApiError(401, "invalid_key", "The API key has been revoked")
        if oauth:
            return ApiError(401, "invalid_client", "Client authentication failed")
        return _invalid_key()

    def _signature(self, account, expires_ms, key):
        message = ("%s|%d|%s" % (account, expires_ms, key)).encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def issue_token(self, account, key):
        expires_ms = int((time.time() + self.token_ttl) * 1000)
        encoded = base64.urlsafe_b64encode(account.encode()).decode().rstrip("=")
        return "%s.%d.%s" % (encoded, expires_ms, self._signature(account, expires_ms, key))

    def check_token(self, scenario, ov, token):
        invalid = ApiError(401, "invalid_token", "The access token is not valid")
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return invalid
        try:
            padded = parts[0] + "=" * (-len(parts[0]) % 4)
            account = base64.urlsafe_b64decode(padded.encode()).decode()
        except Exception:
            return invalid
        if account != scenario.account:
            return invalid
        expires_ms = int(parts[1])
        if not any(
            hmac.compare_digest(parts[2], self._signature(account, expires_ms, key))
            for key in self.accepted_keys(scenario, ov)
        ):
            return invalid
        if expires_ms <= time.time() * 1000:
            return ApiError(401, "token_expired", "The access token has expired")
        return None
