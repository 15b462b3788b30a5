"""The `rest` connector against shapes json-server cannot show, served by a small stdlib server in the test.

`Vendor` is an `http.server` in a thread: the test writes its answers as a
function of the request, and every request is recorded (method, path,
query, headers, body), so a test can say exactly what left and what did
not. Integrations are made through onboarding with typed settings, and
syncs run through the real engine (a queued session run inline).
"""

import base64
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.models import SyncedRecord, SyncSession
from integrations.onboarding import create_integration
from integrations.sync.runner import run_session
from integrations.sync.starting import start_sync
from issues.models import SyncIssue
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

State = SyncSession.State


# -- the server ---------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict  # name -> the first value
    headers: dict  # lower-case name -> value
    body: bytes

    def form(self):
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path,
            {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        vendor = self.server.vendor
        with vendor.lock:
            vendor.requests.append(request)
            status, body, *rest = vendor.answer(request)
        headers = rest[0] if rest else {}
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, *args):
        pass


class Vendor:
    """A loopback server answering `answer(request) -> (status, body[, headers])`; it records each request."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.vendor = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, path):
        return [r for r in self.requests if r.path == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vendor():
    """Start `Vendor`s (`vendor(answer)`); each is shut down after the test."""
    started = []

    def start(answer):
        started.append(Vendor(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def rows(*ids, **fields):
    return [{"id": n, "name": f"Item {n}", **fields} for n in ids]


# -- integrations and syncs ---------------------------------------------------------------


def rest_integration(server, settings, credentials=None):
    """A `rest` integration made through onboarding (typed settings checked), without its first sync."""
    return create_integration(
        TenantFactory(),
        "rest",
        "Vendor",
        settings={"base_url": server.url, "items.endpoint": "/items", **settings},
        credentials=credentials or {},
        queue_first_sync=False,
    )


def sync(integration, kind=SyncSession.Kind.FULL):
    session = start_sync(integration, kind=kind, trigger=SyncSession.Trigger.STAFF, enqueue=False)
    session = run_session(session.pk)
    integration.refresh_from_db()
    return session


def stored(integration):
    return set(SyncedRecord.objects.filter(integration=integration).values_list("external_id", flat=True))


# -- where the items are ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, document",
    [
        ("data.items", {"data": {"items": rows(1, 2, 3)}, "meta": {}}),
        ("/data/items", {"data": {"items": rows(1, 2, 3)}}),
        ("/results/0/rows", {"results": [{"rows": rows(1, 2, 3)}]}),
        # A key holding a dot (OData's `@odata.*` style) needs no escaping.
        ("@odata.value", {"@odata.value": rows(1, 2, 3)}),
        ("", rows(1, 2, 3)),
    ],
)
def test_items_at_a_path(vendor, error_catalog, path, document):
    server = vendor(lambda request: (200, document))
    integration = rest_integration(server, {"items.path": path})

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert (session.items_seen, session.items_created) == (3, 3)
    assert stored(integration) == {"1", "2", "3"}


def test_items_path_pointing_at_no_list_fails_saying_what_was_there(vendor, error_catalog):
    server = vendor(lambda request: (200, {"data": {"items": {"id": 1}}}))
    integration = rest_integration(server, {"items.path": "/data/items"})

    session = sync(integration)

    assert session.error_code_id == "VENDOR_BAD_RESPONSE"
    assert "no list at '/data/items' (found JSON object)" in session.error_message


# -- pagination --------------------------------------------------------------------------------


def test_cursor_in_the_body(vendor, error_catalog):
    pages = {None: (rows(1, 2), "c2"), "c2": (rows(3, 4), "c3"), "c3": (rows(5), None)}

    def answer(request):
        items, following = pages[request.query.get("after")]
        return 200, {"items": items, "meta": {"next": following}}

    server = vendor(answer)
    integration = rest_integration(
        server,
        {
            "items.path": "items",
            "pagination.type": "cursor",
            "pagination.cursor_param": "after",
            "pagination.cursor_path": "meta.next",
            "pagination.size_param": "limit",
            "pagination.size": 2,
        },
    )

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert (session.items_seen, session.pages, session.http_requests) == (5, 3, 3)
    assert [r.query for r in server.requests] == [
        {"limit": "2"},
        {"limit": "2", "after": "c2"},
        {"limit": "2", "after": "c3"},
    ]


def test_next_url_in_the_body_relative_and_absolute(vendor, error_catalog):
    def answer(request):
        page = request.query.get("page", "1")
        following = {
            "1": "?page=2",  # relative to the request
            "2": "/api/v2/items?page=3",  # relative to the host
            "3": f"{server.url}/api/v2/items?page=4",  # absolute, same origin
            "4": None,
        }[page]
        return 200, {"results": rows(int(page)), "links": {"next": following}}

    server = vendor(answer)
    integration = rest_integration(
        server,
        {
            "base_url": f"{server.url}/api/v2",
            "items.path": "results",
            "pagination.type": "next_url",
            "pagination.next_url_path": "links.next",
            "pagination.size_param": "per_page",
            "pagination.size": 1,
        },
    )

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert stored(integration) == {"1", "2", "3", "4"}
    # The next URL carries the query it needs; nothing is added to it.
    assert [(r.path, r.query) for r in server.requests] == [
        ("/api/v2/items", {"per_page": "1"}),
        ("/api/v2/items", {"page": "2"}),
        ("/api/v2/items", {"page": "3"}),
        ("/api/v2/items", {"page": "4"}),
    ]


def test_a_next_url_on_another_origin_is_refused_and_nothing_is_sent_there(vendor, error_catalog):
    elsewhere = vendor(lambda request: (200, {"items": rows(9), "next": None}))
    server = vendor(lambda request: (200, {"items": rows(1), "next": f"{elsewhere.url}/items?page=2"}))
    integration = rest_integration(
        server,
        {"items.path": "items", "pagination.type": "next_url", "auth.type": "bearer"},
        credentials={"api_key": "secret-key"},
    )

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == "DESTINATION_REFUSED"
    assert "points to another site" in session.error_message
    assert len(server.requests) == 1
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    "link",
    [
        '<{url}/items?page={n}>; rel="next"',
        '<{url}/items?page=1>; rel="first", <{url}/items?page={n}>; rel=next,<{url}/items?page=3>; rel=last',
        # RFC 8288 section 3.3: rel holds one or more relation types, separated by spaces...
        '<{url}/items?page={n}>; rel="next last"',
        # ...and registered relation types compare case-insensitively (section 2.1.1).
        '<{url}/items?page={n}>; rel="Next"',
    ],
    ids=["next", "among-others", "several-types", "capitalised"],
)
def test_link_header_forms(vendor, error_catalog, link):
    def answer(request):
        page = int(request.query.get("page", "1"))
        headers = {"Link": link.format(url=server.url, n=page + 1)} if page < 3 else {}
        return 200, rows(page), headers

    server = vendor(answer)
    integration = rest_integration(server, {"pagination.type": "link_header"})

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert stored(integration) == {"1", "2", "3"}


def test_a_link_header_on_another_origin_is_refused(vendor, error_catalog):
    elsewhere = vendor(lambda request: (200, rows(9)))
    server = vendor(lambda request: (200, rows(1), {"Link": f'<{elsewhere.url}/items?page=2>; rel="next"'}))
    integration = rest_integration(server, {"pagination.type": "link_header"})

    session = sync(integration)

    assert session.error_code_id == "DESTINATION_REFUSED"
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    "settings, answer",
    [
        (
            {"pagination.type": "cursor", "pagination.cursor_path": "next_cursor"},
            lambda request: (200, {"items": rows(1), "next_cursor": "same"}),
        ),
        (
            {"pagination.type": "next_url", "pagination.next_url_path": "next"},
            lambda request: (200, {"items": rows(1), "next": "/items?page=2"}),
        ),
        (
            {"pagination.type": "page", "pagination.next_page_path": "next_page"},
            lambda request: (200, {"items": rows(1), "next_page": 2}),
        ),
        (
            {"pagination.type": "link_header"},
            lambda request: (200, {"items": rows(1)}, {"Link": '</items?page=2>; rel="next"'}),
        ),
    ],
    ids=["cursor", "next_url", "page", "link_header"],
)
def test_pagination_that_does_not_advance_stops(vendor, error_catalog, settings, answer):
    server = vendor(answer)
    integration = rest_integration(server, {"items.path": "items", **settings})

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == "VENDOR_BAD_RESPONSE"
    assert "does not advance" in session.error_message
    # The first page, the page it announced, and the same page announced again: stop.
    assert len(server.requests) == 2


def test_a_total_in_the_body_ends_the_run(vendor, error_catalog):
    """The vendor would hand out cursors for ever; the total it states ends the list."""
    counter = iter(range(1, 1000))

    def answer(request):
        n = next(counter)
        return 200, {"data": rows(2 * n - 1, 2 * n), "paging": {"cursor": f"c{n}", "total": 6}}

    server = vendor(answer)
    integration = rest_integration(
        server,
        {
            "items.path": "data",
            "pagination.type": "cursor",
            "pagination.cursor_path": "paging.cursor",
            "pagination.total_path": "paging.total",
        },
    )

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert (session.items_seen, session.items_total, session.http_requests) == (6, 6, 3)
    assert len(server.requests) == 3


# -- authentication ----------------------------------------------------------------------------


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "settings, credentials, expected_headers, expected_query",
    [
        ({"auth.type": "none"}, {}, {}, {}),
        (
            {"auth.type": "api_key_header", "auth.header": "X-Token"},
            {"api_key": "k-123"},
            {"x-token": "k-123"},
            {},
        ),
        ({"auth.type": "api_key_header"}, {"api_key": "k-123"}, {"x-api-key": "k-123"}, {}),
        (
            {"auth.type": "api_key_query", "auth.query_param": "key"},
            {"api_key": "k-123"},
            {},
            {"key": "k-123"},
        ),
        ({"auth.type": "bearer"}, {"api_key": "k-123"}, {"authorization": "Bearer k-123"}, {}),
        (
            {"auth.type": "basic"},
            {"username": "ann", "password": "pa:ss"},
            {"authorization": basic("ann", "pa:ss")},
            {},
        ),
        (
            {"auth.type": "headers", "auth.headers": {"X-Account": "account_id", "X-Secret": "secret"}},
            {"account_id": "acme", "secret": "s3cr3t"},
            {"x-account": "acme", "x-secret": "s3cr3t"},
            {},
        ),
    ],
    ids=["none", "api_key_header", "api_key_header_default", "api_key_query", "bearer", "basic", "headers"],
)
def test_each_auth_type_sends_exactly_its_credentials(
    vendor, error_catalog, settings, credentials, expected_headers, expected_query
):
    server = vendor(lambda request: (200, rows(1, 2)))
    integration = rest_integration(server, settings, credentials=credentials)
    assert integration.has_credentials == bool(credentials)

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert session.items_created == 2
    (request,) = server.requests
    auth_headers = {"authorization", "x-api-key", "x-token", "x-account", "x-secret"}
    assert {k: v for k, v in request.headers.items() if k in auth_headers} == expected_headers
    assert request.query == expected_query


@pytest.mark.parametrize("password", ["pä:ss", "p€ss"])
def test_basic_credentials_beyond_ascii_are_sent_as_utf8(vendor, error_catalog, password):
    """RFC 7617 section 2.1: the only charset a server may announce for Basic is UTF-8."""
    server = vendor(lambda request: (200, rows(1)))
    integration = rest_integration(
        server, {"auth.type": "basic"}, credentials={"username": "ann", "password": password}
    )

    session = sync(integration)

    assert (session.state, session.error_code_id) == (State.SUCCEEDED, None)
    assert server.requests[0].headers["authorization"] == basic("ann", password)


def token_vendor(vendor, items=lambda request: (200, rows(1, 2))):
    """A vendor with an OAuth2 token endpoint (tok-1, tok-2, ...) before `items`; only live tokens pass."""
    state = {"issued": 0, "live": set()}

    def answer(request):
        if request.path.endswith("/token"):
            state["issued"] += 1
            token = f"tok-{state['issued']}"
            state["live"].add(token)
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in state["live"]:
            return 401, {"error": "invalid_token", "message": "Unknown or revoked access token"}
        return items(request)

    server = vendor(answer)
    server.state = state
    return server


@pytest.mark.parametrize("token_format", ["form", "json"])
def test_oauth2_client_credentials(vendor, error_catalog, token_format):
    server = token_vendor(vendor)
    integration = rest_integration(
        server,
        {
            "auth.type": "oauth2_client_credentials",
            "auth.token_format": token_format,
            "auth.token_url": f"{server.url}/auth/token",
            "auth.scope": "contacts.read offline",
            "auth.token_params": {"audience": "https://api.vendor.example"},
        },
        credentials={"client_id": "app-1", "client_secret": "shh"},
    )

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    token_request, items_request = server.requests
    assert (token_request.method, token_request.path) == ("POST", "/auth/token")
    fields = {
        "grant_type": "client_credentials",
        "client_id": "app-1",
        "client_secret": "shh",
        "scope": "contacts.read offline",
        "audience": "https://api.vendor.example",
    }
    if token_format == "json":
        assert token_request.headers["content-type"] == "application/json"
        assert token_request.json() == fields
    else:
        assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert token_request.form() == fields
    assert items_request.headers["authorization"] == "Bearer tok-1"
    assert session.http_requests == 2


def test_a_401_mid_run_fetches_a_new_token_once(vendor, error_catalog):
    def items(request):
        page = int(request.query.get("page", "1"))
        if page == 1:
            # The vendor revokes the token after the first page.
            server.state["live"].discard("tok-1")
        return 200, {"items": rows(page), "next_page": page + 1 if page < 3 else None}

    server = token_vendor(vendor, items)
    integration = rest_integration(
        server,
        {
            "auth.type": "oauth2_client_credentials",
            "items.path": "items",
            "pagination.type": "page",
            "pagination.next_page_path": "next_page",
        },
        credentials={"client_id": "app-1", "client_secret": "shh"},
    )

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert stored(integration) == {"1", "2", "3"}
    assert [(r.path, r.query.get("page"), r.headers.get("authorization")) for r in server.requests] == [
        ("/oauth/token", None, None),
        ("/items", "1", "Bearer tok-1"),
        ("/items", "2", "Bearer tok-1"),  # 401
        ("/oauth/token", None, None),
        ("/items", "2", "Bearer tok-2"),
        ("/items", "3", "Bearer tok-2"),
    ]


def test_a_401_to_a_fresh_token_is_not_retried_again(vendor, error_catalog):
    server = token_vendor(
        vendor, lambda request: (401, {"error": "invalid_token", "message": "No access to items"})
    )
    integration = rest_integration(
        server,
        {"auth.type": "oauth2_client_credentials"},
        credentials={"client_id": "app-1", "client_secret": "shh"},
    )

    session = sync(integration)

    assert session.error_code_id == "AUTH_INVALID"
    assert "No access to items" in session.error_message
    assert [r.path for r in server.requests] == ["/oauth/token", "/items", "/oauth/token", "/items"]


def rotating_vendor(vendor, items=lambda request: (200, rows(1, 2))):
    """A vendor whose token endpoint takes each refresh token once and hands out the next (r-1, r-2, ...)."""
    state = {"refresh": "r-1", "generation": 1}

    def answer(request):
        if request.path == "/oauth/token":
            if request.form().get("refresh_token") != state["refresh"]:
                return 400, {"error": "invalid_grant", "error_description": "Refresh token already used"}
            state["generation"] += 1
            state["refresh"] = f"r-{state['generation']}"
            return 200, {
                "access_token": f"a-{state['generation']}",
                "refresh_token": state["refresh"],
                "expires_in": 600,
            }
        return items(request)

    server = vendor(answer)
    server.state = state
    return server


REFRESH = {"client_id": "app-1", "client_secret": "shh", "refresh_token": "r-1"}


def test_a_rotated_refresh_token_is_stored_encrypted_and_used_next_time(vendor, error_catalog):
    server = rotating_vendor(vendor)
    integration = rest_integration(server, {"auth.type": "oauth2_refresh_token"}, credentials=REFRESH)

    first = sync(integration)

    assert first.state == State.SUCCEEDED
    assert server.requests[0].form() == {
        "grant_type": "refresh_token",
        "refresh_token": "r-1",
        "client_id": "app-1",
        "client_secret": "shh",
    }
    assert integration.get_credentials() == {**REFRESH, "refresh_token": "r-2"}
    assert "r-2" not in integration.credentials_ciphertext
    assert any("rotated the refresh token" in entry["message"] for entry in first.log)

    second = sync(integration)

    assert second.state == State.SUCCEEDED
    assert server.to("/oauth/token")[1].form()["refresh_token"] == "r-2"
    assert integration.get_credentials()["refresh_token"] == "r-3"


def test_a_rotated_refresh_token_is_kept_when_the_run_then_fails(vendor, error_catalog):
    """The vendor has already retired r-1: losing r-2 with the failed run would lock the integration out."""
    server = rotating_vendor(vendor, items=lambda request: (503, {"message": "Down for maintenance"}))
    integration = rest_integration(server, {"auth.type": "oauth2_refresh_token"}, credentials=REFRESH)

    session = sync(integration)

    assert session.error_code_id == "VENDOR_UNAVAILABLE"
    assert integration.get_credentials()["refresh_token"] == "r-2"


def test_a_connection_test_keeps_the_rotated_refresh_token(vendor, error_catalog):
    from integrations.connection_test import test_connection

    server = rotating_vendor(vendor)
    integration = rest_integration(server, {"auth.type": "oauth2_refresh_token"}, credentials=REFRESH)

    result = test_connection(integration)

    assert result.ok, result.message
    assert server.state["refresh"] == "r-2"  # r-1 is spent
    integration.refresh_from_db()
    assert integration.get_credentials()["refresh_token"] == "r-2"
    assert sync(integration).state == State.SUCCEEDED


def test_discovery_at_creation_keeps_the_rotated_refresh_token(vendor, error_catalog):
    def items(request):
        if request.path == "/accounts":
            return 200, {"accounts": [{"id": "a1", "name": "Acme"}]}
        return 200, rows(1, 2)

    server = rotating_vendor(vendor, items)
    integration = rest_integration(
        server,
        {"auth.type": "oauth2_refresh_token", "accounts.endpoint": "/accounts", "accounts.path": "accounts"},
        credentials=REFRESH,
    )

    assert [r.path for r in server.requests] == ["/oauth/token", "/accounts"]
    assert integration.account_mappings.get().vendor_account_id == "a1"
    integration.refresh_from_db()
    assert integration.get_credentials()["refresh_token"] == "r-2"
    assert sync(integration).state == State.SUCCEEDED


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, status, body, code",
    [
        # The default markers.
        ({}, 401, {"error": "token_expired", "message": "Please log in again"}, "AUTH_EXPIRED"),
        ({}, 401, {"error": {"code": "SESSION_GONE"}, "message": "Session gone"}, "AUTH_INVALID"),
        # A vendor's own words, matched case-insensitively anywhere in the error.
        ({"auth.expired_errors": ["session_gone"]}, 401, {"error": {"code": "SESSION_GONE"}}, "AUTH_EXPIRED"),
    ],
)
def test_expired_credentials_are_told_from_wrong_ones(vendor, error_catalog, settings, status, body, code):
    server = vendor(lambda request: (status, body))
    integration = rest_integration(server, {"auth.type": "bearer", **settings}, credentials={"api_key": "k"})

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == code


def test_an_expired_refresh_token_is_auth_expired(vendor, error_catalog):
    server = vendor(
        lambda request: (
            400,
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        )
    )
    integration = rest_integration(
        server,
        {"auth.type": "oauth2_refresh_token", "auth.expired_errors": ["expired or revoked"]},
        credentials={"client_id": "app-1", "client_secret": "shh", "refresh_token": "r-1"},
    )

    session = sync(integration)

    assert session.error_code_id == "AUTH_EXPIRED"
    assert "Token has been expired or revoked." in session.error_message
    assert [r.path for r in server.requests] == ["/oauth/token"]


@pytest.mark.parametrize(
    "path, status, body, code, words",
    [
        (
            "fault.detail",
            403,
            {"fault": {"detail": "Your plan has no contacts API"}},
            "AUTH_FORBIDDEN",
            "Your plan has no contacts API",
        ),
        (
            "/errors/0/title",
            404,
            {"errors": [{"title": "No such list: items"}]},
            "VENDOR_BAD_RESPONSE",
            "No such list: items",
        ),
        (
            "/errors/0/title",
            422,
            {"errors": [{"title": "Filter not supported"}]},
            "VENDOR_BAD_RESPONSE",
            "Filter not supported",
        ),
    ],
)
def test_errors_message_path_words_the_failure(vendor, error_catalog, path, status, body, code, words):
    server = vendor(lambda request: (status, body))
    integration = rest_integration(server, {"errors.message_path": path})

    session = sync(integration)

    assert session.error_code_id == code
    assert words in session.error_message


# -- item rules and links ------------------------------------------------------------------------


def test_custom_checks_one_of_and_pattern(vendor, error_catalog):
    items = [
        {"id": 1, "status": "active", "code": "ABC-1234"},
        {"id": 2, "status": "deleted", "code": "ABC-1234"},
        {"id": 3, "status": "archived", "code": "abc-12"},
        {"id": 4, "status": "gone", "code": "X"},
        {"id": 5, "code": "DEF-0001"},  # no status: a check skips what is not there
        {"id": 6, "status": "active", "code": 1234},  # not text: does not have the form
    ]
    server = vendor(lambda request: (200, items))
    integration = rest_integration(
        server,
        {
            "rules.checks": [
                {"field": "status", "one_of": ["active", "archived"]},
                {"field": "code", "pattern": r"[A-Z]{3}-\d{4}", "message": "Codes look like ABC-1234."},
            ]
        },
    )

    session = sync(integration)

    assert session.state == State.WARNINGS
    assert (session.items_created, session.items_warnings) == (6, 4)
    issues = {i.external_id: i for i in SyncIssue.objects.filter(integration=integration)}
    assert set(issues) == {"2", "3", "4", "6"}
    assert {i.error_code_id for i in issues.values()} == {"ITEM_INVALID_VALUE"}
    assert issues["2"].message == "Field 'status' must be one of active, archived, got 'deleted'."
    assert issues["3"].message == "Codes look like ABC-1234."
    assert issues["6"].message == "Codes look like ABC-1234."
    # Two problems of one code on one item are one issue that says both.
    assert (
        issues["4"].message
        == "Field 'status' must be one of active, archived, got 'gone'. Codes look like ABC-1234."
    )


def test_the_item_link_template(vendor, error_catalog):
    items = [
        {"id": "c 1/2", "owner": {"slug": "ann"}, "name": "No email"},
        {"id": "c3", "owner": {"slug": "bob"}, "name": "Fine", "email": "bob@example.com"},
    ]
    server = vendor(lambda request: (200, {"contacts": items}))
    integration = rest_integration(
        server,
        {
            "items.path": "contacts",
            "items.url_template": "https://app.vendor.example/{owner.slug}/contacts/{id}",
            "rules.required_fields": ["email"],
        },
    )

    session = sync(integration)

    assert session.state == State.WARNINGS
    issue = SyncIssue.objects.get(integration=integration)
    assert (issue.external_id, issue.error_code_id, issue.item_label) == (
        "c 1/2",
        "ITEM_MISSING_FIELD",
        "No email",
    )
    # Each value is quoted: an id holding a slash stays one path segment.
    assert issue.vendor_url == "https://app.vendor.example/ann/contacts/c%201%2F2"


# -- reading answers: orjson where it reads what json reads ------------------------------------


@pytest.mark.parametrize(
    "body, encoding",
    [
        (b'{"items": [{"id": 1, "price": 12.5, "tiny": 1e-05, "big": 1.5e300, "name": "Zo\\u00eb"}]}', "utf-8"),
        ('{"name": "Zoë", "emoji": "😀", "cjk": "東京"}'.encode(), "utf-8"),
        (b'{"u64": 18446744073709551615, "past": 18446744073709551616, "neg": -9223372036854775809}', "utf-8"),
        (b'{"long": 0.1000000000000000055511151231257827, "e": 123456789012345678901234567890.5}', "utf-8"),
        (b'{"nan": NaN, "inf": Infinity}', "utf-8"),
        (b'{"a": 1, "a": 2, "nested": [[[{"b": null}]]]}', None),
        (b'\xef\xbb\xbf{"bom": true}', None),
        (b'{"bad": "\xff"}', "utf-8"),
        ('{"latin": "café"}'.encode("latin-1"), "ISO-8859-1"),
        (b'{"cut": [1, 2', "utf-8"),
        (b"", "utf-8"),
    ],
)
def test_answers_read_as_json_reads_them(body, encoding):
    import requests

    from integrations.connectors.rest.connector import read_json

    def answer():
        response = requests.Response()
        response._content, response.encoding, response.status_code = body, encoding, 200
        return response

    def outcome(read):
        try:
            return repr(read())
        except ValueError:
            return "ValueError"

    assert outcome(lambda: read_json(answer())) == outcome(lambda: answer().json())
