"""The vendor simulator's HTTP server: the request handler.

``state.py`` holds what requests share (accounts, counters, keys and tokens),
``cli.py`` the help text, the options and ``serve``. The names other code
imports from this module are re-exported below.
"""

import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import orjson

from . import profiles
from . import scenarios as sc
from .cli import (  # noqa: F401 - re-exported for the management command and older imports
    HELP_TEXT,
    RawDescriptionFormatter,
    add_arguments,
    build_parser,
    main,
    serve,
)
from .state import ApiError, SimulatorServer, unavailable  # noqa: F401 - SimulatorServer re-exported

MAX_BODY_BYTES = 1024 * 1024
LOGGED_QUERY_KEYS = ("page", "page_size", "cursor", "updated_since")
CONTROL_KEYS = frozenset({"drop", "change", "recover", "fail", "api_key"})


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VendorSimulator/1.0"
    disable_nagle_algorithm = True
    timeout = 300  # an idle keep-alive connection is closed after this

    # -- plumbing ----------------------------------------------------------

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format, *args):
        sys.stderr.write("vendor simulator: %s\n" % (format % args))

    def log_request(self, code="-", size="-"):
        pass  # every answer is logged by _send, without headers

    def _log(self, status):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        kept = [(k, v[0]) for k, v in query.items() if k in LOGGED_QUERY_KEYS]
        shown = parts.path + ("?" + urlencode(kept) if kept else "")
        sys.stderr.write("%s %s %d\n" % (self.command, shown, status))

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (bad request line, unsupported method) in JSON too."""
        self.close_connection = True
        short, long = self.responses.get(code, ("Error", ""))
        body = json.dumps(
            {"error": "http_%d" % code, "message": message or explain or long or short},
            separators=(",", ":"),
        ).encode()
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except (ConnectionError, TimeoutError):
            pass
        path = urlsplit(getattr(self, "path", "") or "").path or "-"
        sys.stderr.write("%s %s %d\n" % (self.command or "-", path, code))

    def version_string(self):
        return self.server_version

    def _send(self, status, body, headers=None, content_type="application/json"):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        self._log(status)

    def _send_json(self, status, payload, headers=None):
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._send(status, body, headers)

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise ApiError(411, "length_required", "Send a Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "bad_request", "Bad Content-Length") from None
        if size < 0 or size > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, "too_large", "The request body is too large")
        return self.rfile.read(size)

    def _dispatch(self, method):
        try:
            body = self._read_body()
            self._route(method, body)
        except ApiError as error:
            self._send_json(error.status, error.body, error.headers)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    # -- routing -----------------------------------------------------------

    def _route(self, method, body):
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        if segments and segments[-1] == "" and len(segments) > 1:
            segments.pop()
        query = parse_qs(parts.query, keep_blank_values=True)

        if segments == ["health"]:
            self._allow(method, "GET")
            return self._send_json(200, {"ok": True})
        if segments == ["oauth", "token"]:
            self._allow(method, "POST")
            return self._token(body)
        if len(segments) >= 3 and segments[0] == "v1":
            self._allow(method, "GET")
            return self._api(segments[1], segments[2:], query)
        if len(segments) == 3 and segments[:2] == ["_control", "accounts"]:
            self._allow(method, "GET", "POST", "DELETE")
            return self._control(method, segments[2], body)
        if segments[0] == "profiles":
            return profiles.respond(self, method, segments[1:], query, body)
        raise ApiError(404, "not_found", "No such endpoint")

    def _allow(self, method, *allowed):
        if method not in allowed:
            raise ApiError(405, "method_not_allowed", "Use %s" % " or ".join(allowed),
                           {"Allow": ", ".join(allowed)})

    @staticmethod
    def _scenario(account):
        scenario = sc.parse_account(account)
        if scenario is None:
            raise ApiError(404, "unknown_account", "No vendor account named %r" % account[:100])
        return scenario

    def _base_url(self):
        host = self.headers.get("Host")
        if not host:
            address, port = self.server.server_address[:2]
            host = "%s:%d" % (address, port)
        return "http://" + host

    # -- /oauth/token ------------------------------------------------------

    def _token(self, body):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        grant_type = form.get("grant_type", [""])[0]
        client_id = form.get("client_id", [""])[0]
        client_secret = form.get("client_secret", [""])[0]
        authorization = self.headers.get("Authorization", "")
        if authorization[:6].lower() == "basic " and not client_id:
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
                user, _, password = decoded.partition(":")
                client_id, client_secret = unquote(user), unquote(password)
            except Exception:
                raise ApiError(401, "invalid_client", "Client authentication failed") from None
        if grant_type != "client_credentials":
            raise ApiError(400, "unsupported_grant_type", "Only client_credentials is supported")
        if not client_id:
            raise ApiError(401, "invalid_client", "client_id is missing")
        scenario = self._scenario(client_id)
        server = self.server
        server.count(scenario.account, "token")
        ov = server.overrides(scenario.account)
        if ov.failed or sc.effective_kind(scenario, ov) == "outage":
            raise unavailable()
        problem = server.check_key(scenario, ov, client_secret, oauth=True)
        if problem:
            raise problem
        token = server.issue_token(scenario.account, client_secret)
        self._send_json(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": server.token_ttl},
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    # -- /v1 -------------------------------------------------------------

    def _authenticate(self, scenario, ov):
        key = self.headers.get("X-API-Key")
        if key is not None:
            return self.server.check_key(scenario, ov, key)
        authorization = self.headers.get("Authorization")
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return self.server.check_token(scenario, ov, token.strip())
            if scheme.lower() == "bearer":
                return ApiError(401, "invalid_token", "The access token is missing")
        return ApiError(
            401, "missing_credentials",
            "Send X-API-Key or Authorization: Bearer <token>",
        )

    def _api(self, account, rest, query):
        scenario = self._scenario(account)
        endpoint = rest[0]
        if rest == ["items"]:
            counter = "items"
        elif endpoint == "items" and len(rest) == 2:
            counter = "item"
        elif rest in (["me"], ["accounts"]):
            counter = endpoint
        else:
            counter = None
        server = self.server
        if counter:
            before = server.count(account, counter)
        else:
            server.count_unrouted(account)
        ov = server.overrides(account)
        kind = sc.effective_kind(scenario, ov)
        if ov.failed or kind == "outage":
            raise unavailable()
        problem = self._authenticate(scenario, ov)
        if problem:
            raise problem
        if counter is None:
            raise ApiError(404, "not_found", "No such endpoint")

        now = sc.iso(sc.utcnow())
        if counter == "me":
            catalog = sc.Catalog(scenario, ov, server.seed, "")
            return self._send_json(200, {
                "account": account,
                "scenario": scenario.name,
                "item_count": catalog.distinct_count,
                "server_time": now,
            })
        if kind == "forbidden":
            raise ApiError(403, "forbidden", "The API user lacks the Items:Read permission")
        if counter == "accounts":
            return self._send_json(200, {"accounts": sc.VENDOR_ACCOUNTS, "server_time": now})

        prefix = "%s/v1/%s/items/" % (self._base_url(), account)
        catalog = sc.Catalog(scenario, ov, server.seed, prefix)
        if counter == "item":
            if kind == "slow":
                time.sleep(server.slow_seconds)
            index = sc.parse_item_id(rest[1])
            if index is None or not catalog.has(index):
                raise ApiError(404, "not_found", "No such item")
            return self._send_json(200, catalog.item(index))
        return self._items(scenario, kind, catalog, query, before)

    def _items(self, scenario, kind, catalog, query, before):
        server = self.server

        def single(name):
            values = query.get(name)
            return values[-1] if values else None

        def positive_int(name, value):
            if not value.isdigit() or int(value) < 1 or len(value) > 12:
                raise ApiError(400, "bad_request", "%s must be a positive integer" % name)
            return int(value)

        page_text, size_text = single("page"), single("page_size")
        cursor_text, since_text = single("cursor"), single("updated_since")
        if page_text is not None and cursor_text is not None:
            raise ApiError(400, "bad_request", "Use either page or cursor, not both")
        page = positive_int("page", page_text) if page_text is not None else 1
        size = positive_int("page_size", size_text) if size_text is not None else server.page_size
        size = min(size, server.max_page_size)
        since = None
        if since_text is not None:
            try:
                since = sc.parse_instant(since_text)
            except ValueError:
                raise ApiError(
                    400, "bad_request", "updated_since must be an ISO 8601 date-time"
                ) from None
        cursor_slot = 0
        if cursor_text:
            try:
                cursor_slot, cursor_since = sc.decode_cursor(cursor_text)
            except ValueError:
                raise ApiError(400, "bad_request", "The cursor is not valid") from None
            if since is None:
                since = cursor_since

        if kind == "flaky" and before < 2:
            if before == 0:
                raise ApiError(503, "unavailable", "The service is temporarily unavailable")
            raise ApiError(502, "bad_gateway", "Upstream error")

        listing = catalog.listing(since)
        cursor_mode = cursor_text is not None
        if cursor_mode:
            start = listing.position_of(cursor_slot)
        else:
            start = (page - 1) * size
        effective_page = start // size + 1

        if kind == "rate-limited" and effective_page in (2, 3):
            if server.first_time_for_page(scenario.account, effective_page):
                raise ApiError(429, "rate_limited", "Too many requests", {"Retry-After": "1"})
        if kind == "slow":
            time.sleep(server.slow_seconds)

        slots = listing.take(start, size) if start < listing.total else []
        more = start + len(slots) < listing.total
        # What the items of these slots depend on: the page cache's key.
        changes = tuple(sorted((index, change.version, change.updated_at) for index, change in catalog.overrides.changed.items()))
        key = (catalog.url_prefix, catalog.kind, catalog._offset, tuple(slots), changes)
        items = server.page_cache.get(key)
        if items is None:
            index_of = catalog.index_of_slot
            item = catalog.item
            # orjson: the same JSON as json.dumps (UTF-8 rather than \u escapes) at a
            # tenth of the CPU, which the simulator shares with the client it serves.
            items = orjson.dumps([item(index_of(slot)) for slot in slots])
            server.page_cache.put(key, items)
        envelope = {
            "page": None if cursor_mode else page,
            "page_size": size,
            "next_page": page + 1 if more and not cursor_mode else None,
            "next_cursor": sc.encode_cursor(slots[-1] + 1, since) if more and slots else None,
            "total": listing.total,
            "server_time": sc.iso(sc.utcnow()),
        }
        body = b'{"items":' + items + b"," + orjson.dumps(envelope)[1:]
        if kind == "malformed" and start <= listing.total // 2 < start + len(slots):
            # The page holding the middle item, whatever the page size: a
            # client that reads everything always meets it.
            body = body[: max(1, min(len(body) // 2, 40))]
        self._send(200, body)

    # -- /_control ---------------------------------------------------------

    def _control(self, method, account, body):
        scenario = self._scenario(account)
        server = self.server
        if method == "GET":
            return self._send_json(200, server.stats(account))
        if method == "DELETE":
            server.reset(account)
            return self._send_json(200, {"account": account, "reset": True})
        try:
            changes = json.loads(body.decode("utf-8") if body else "")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "bad_request", "The body must be a JSON object") from None
        validated = self._validate_control(scenario, changes)
        overrides = server.apply_control(account, scenario, validated)
        self._send_json(200, {"account": account, "overrides": overrides})

    @staticmethod
    def _validate_control(scenario, changes):
        if not isinstance(changes, dict):
            raise ApiError(400, "bad_request", "The body must be a JSON object")
        unknown = sorted(set(changes) - CONTROL_KEYS)
        if unknown:
            raise ApiError(
                400, "bad_request",
                "Unknown keys %s; allowed: %s" % (", ".join(unknown), ", ".join(sorted(CONTROL_KEYS))),
            )
        validated = {}
        for key in ("drop", "change"):
            if key not in changes:
                continue
            ids = changes[key]
            if not isinstance(ids, list):
                raise ApiError(400, "bad_request", "%s must be a list of item ids" % key)
            indexes = []
            for value in ids:
                index = sc.parse_item_id(value)
                if index is None or index > scenario.item_count:
                    raise ApiError(400, "bad_request", "%s: no item %r in this account" % (key, value))
                indexes.append(index)
            validated[key] = indexes
        for key in ("recover", "fail"):
            if key in changes:
                if not isinstance(changes[key], bool):
                    raise ApiError(400, "bad_request", "%s must be true or false" % key)
                validated[key] = changes[key]
        if "api_key" in changes:
            value = changes["api_key"]
            if value is not None and (not isinstance(value, str) or not value):
                raise ApiError(400, "bad_request", "api_key must be a non-empty string or null")
            validated["api_key"] = value
        return validated

