"""The `carddav` connector against two independently written CardDAV servers: Radicale and Xandikos.

Every test here runs against both: Radicale (tests/plugins/radicale.py) with
a user and password, Xandikos (tests/plugins/xandikos.py) without
authentication. Where a server cannot be made to produce a condition (a 500
on one contact, a malformed answer, a token refused with another status), a
FaultProxy (tests/plugins/fault_proxy.py) stands in front of the real server
and alters only that answer. Neither server is ever skipped: one that does
not start fails its tests.
"""

import re

import pytest
import requests
import vobject

from integrations.connectors import errors
from integrations.connectors.carddav import CardDavConnector, book_key, decode_cursor, encode_cursor
from integrations.connectors.http import VendorHttp
from integrations.models import Integration, SyncedRecord, SyncSession
from integrations.onboarding import create_integration
from issues.models import SyncIssue
from tests.factories import TenantFactory
from tests.plugins.fault_proxy import FaultProxy
from tests.plugins.radicale import make_vcard, radicale_server  # noqa: F401
from tests.plugins.xandikos import xandikos_server  # noqa: F401

State = SyncSession.State
Kind = SyncSession.Kind
live_sync = pytest.mark.django_db(transaction=True)
PEERS = ("radicale", "xandikos")
# How each server refuses a token it never issued (both with DAV:valid-sync-token).
REFUSAL_STATUS = {"radicale": 403, "xandikos": 412}
VALID_SYNC_TOKEN_ERROR = b'<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>'


class Book:
    """One address book on a peer, as a test fills and inspects it (bytes as the server serves them)."""

    def __init__(self, peer, path, auth):
        self.peer, self.path, self.auth = peer, path, auth

    def url(self, uid, base=None):
        return (base or self.peer.url).rstrip("/") + f"{self.path}{uid}.vcf"

    def credentials(self, url=None):
        credentials = {"url": url or self.peer.url}
        if self.auth:
            credentials.update(username=self.auth[0], password=self.auth[1])
        return credentials

    def put(self, uid, data, **headers):
        headers = {"Content-Type": "text/vcard; charset=utf-8", **headers}
        return self.peer.http.put(self.url(uid), data=data, headers=headers, auth=self.auth, timeout=10)

    def add(self, uid, text=None, **fields):
        data = (text or make_vcard(uid, **fields)).encode()
        response = self.put(uid, data, **{"If-None-Match": "*"})
        assert response.status_code in (201, 204), response.text
        return uid

    def get(self, uid):
        """(the vCard's bytes as the server serves them, ETag)."""
        response = self.peer.http.get(self.url(uid), auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.content, response.headers.get("ETag", "")

    def edit(self, uid, old, new):
        """Change the stored vCard as a client would: GET, edit the bytes, PUT with If-Match."""
        data, etag = self.get(uid)
        assert old.encode() in data, data
        response = self.put(uid, data.replace(old.encode(), new.encode()), **{"If-Match": etag})
        assert response.status_code in (200, 201, 204), response.text

    def categories(self, uid):
        card = vobject.readOne(self.get(uid)[0].decode())
        return [value for line in card.contents.get("categories", []) for value in line.value]


class Peer:
    """A real CardDAV server of one kind, as the tests need it."""

    def __init__(self, name, server):
        self.name, self.server = name, server
        self.url = server.url
        self.needs_auth = name == "radicale"
        self.http = requests.Session()

    def new_books(self, *books):
        """Address books of one (new) user: each (name, display name)."""
        if self.needs_auth:
            user = self.server.new_user()
            auth = (user, self.server.users[user])
            paths = [self.server.create_addressbook(user, name, displayname) for name, displayname in books]
        else:
            auth = None
            paths = [self.server.create_addressbook(name, displayname) for name, displayname in books]
        return [Book(self, path, auth) for path in paths]

    def new_book(self, name="contacts", displayname=None):
        return self.new_books((name, displayname))[0]


@pytest.fixture(params=PEERS)
def peer(request):
    server = request.getfixturevalue(f"{request.param}_server")
    peer = Peer(request.param, server)
    yield peer
    peer.http.close()


@pytest.fixture
def integration_for(error_catalog):
    """A CardDAV integration for a book, created through onboarding (discovery included)."""

    def make(book, *, url=None, **settings):
        return create_integration(
            TenantFactory(),
            "carddav",
            f"Contacts at {book.path}",
            settings=settings,
            credentials=book.credentials(url),
            queue_first_sync=False,
        )

    return make


@pytest.fixture
def http_spy(monkeypatch):
    """Every request the connector sends: (method, url, headers, body)."""
    sent = []
    real = VendorHttp.request

    def request(self, method, url, **kwargs):
        sent.append((method, url, kwargs.get("headers") or {}, kwargs.get("data") or b""))
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(VendorHttp, "request", request)
    return sent


def open_issues(integration):
    return {
        (issue.external_id, issue.error_code_id): issue
        for issue in SyncIssue.objects.filter(integration=integration, state="open").exclude(external_id="")
    }


def messages(session):
    return [entry["message"] for entry in session.log]


def is_sync_collection_from_a_token(request):
    """Whether a proxied request is a sync-collection asking what changed since a token (not a listing)."""
    empty = b"<D:sync-token></D:sync-token>" in request.body
    return request.method == "REPORT" and b"sync-collection" in request.body and not empty


def is_multiget(request):
    return request.method == "REPORT" and b"addressbook-multiget" in request.body


# -- discovery -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_discovery_from_the_server_root_goes_through_well_known(peer, integration_for, http_spy):
    customers, family = peer.new_books(("customers", "Customers"), ("family", "Family"))

    with FaultProxy(peer.url) as proxy:
        integration = integration_for(customers, url=proxy.url)
        root = proxy.url

    assert sorted(integration.account_mappings.values_list("vendor_account_id", "vendor_account_name")) == [
        (customers.path, "Customers"),
        (family.path, "Family"),
    ]
    # RFC 6764: the well-known address first; both servers redirect it to /, and the
    # PROPFIND follows the redirect as a PROPFIND (one request for the connector).
    asked = [(r.method, r.path) for r in proxy.requests]
    assert asked[:2] == [("PROPFIND", "/.well-known/carddav"), ("PROPFIND", "/")]
    assert http_spy[0][:2] == ("PROPFIND", root + ".well-known/carddav")
    assert root not in [url for _, url, _, _ in http_spy]
    # Xandikos has no authentication: no Authorization header goes to it, ever.
    authorized = {any(name.lower() == "authorization" for name in r.headers) for r in proxy.requests}
    assert authorized == {peer.needs_auth}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status, headers",
    [(404, {}), (301, {"Location": "http://192.0.2.10/dav/"})],
    ids=["missing", "another-site"],
)
def test_a_well_known_address_that_leads_nowhere_falls_back_to_the_root(
    peer, integration_for, http_spy, status, headers
):
    book = peer.new_book("customers", "Customers")

    with FaultProxy(peer.url) as proxy:
        proxy.answer(lambda r: r.path.startswith("/.well-known/"), status, headers=headers)
        integration = integration_for(book, url=proxy.url)
        root = proxy.url

    assert list(integration.account_mappings.values_list("vendor_account_id", "vendor_account_name")) == [
        (book.path, "Customers")
    ]
    # Nothing was sent to the other site; the connector asked the root itself.
    assert [(r.method, r.path) for r in proxy.requests][:2] == [
        ("PROPFIND", "/.well-known/carddav"),
        ("PROPFIND", "/"),
    ]
    assert [url for _, url, _, _ in http_spy][:2] == [root + ".well-known/carddav", root]


# -- full sync -----------------------------------------------------------------------------


@live_sync
def test_a_full_sync_reads_every_contact_and_opens_the_right_issues(peer, integration_for, sync):
    book = peer.new_book(displayname="Customers")
    book.add("ann", given="Ann", family="Lee", emails=["ann@example.com"], phones=["+1 555 0100"], org="Acme")
    book.add("bob", given="Bob", emails=["bob@example.com"])  # no last name
    book.add("cy", given="Cy", family="Ng", emails=["cy-at-example.com"])  # invalid email
    book.add("di", given="Di", family="Ox", emails=["ANN@Example.com"])  # Ann's email again
    book.add("zoe", given="Zoë", family="Ürban", categories=["Köln"])
    integration = integration_for(book)

    session = sync(integration)

    assert session.state == State.WARNINGS, session.error_message
    assert (session.items_seen, session.items_created, session.items_warnings) == (5, 5, 3)
    assert set(open_issues(integration)) == {
        ("bob", "ITEM_MISSING_FIELD"),
        ("cy", "ITEM_INVALID_VALUE"),
        ("di", "ITEM_DUPLICATE"),
    }
    records = {r.external_id: r for r in SyncedRecord.objects.filter(integration=integration)}
    assert records["ann"].data == {
        "uid": "ann",
        "fn": "Ann Lee",
        "n": {"family": "Lee", "given": "Ann"},
        "emails": ["ann@example.com"],
        "phones": ["+1 555 0100"],
        "org": "Acme",
        "categories": [],
        "href": f"{book.path}ann.vcf",
    }
    assert records["zoe"].data["n"] == {"family": "Ürban", "given": "Zoë"}
    assert records["zoe"].data["categories"] == ["Köln"]
    assert open_issues(integration)["bob", "ITEM_MISSING_FIELD"].vendor_url == book.url("bob")
    assert integration.sync_cursor and book_key(book.path) in decode_cursor(integration.sync_cursor)

    # Nothing changed: a quick sync reads nothing.
    quick = sync(integration, kind=Kind.QUICK)
    assert (quick.state, quick.items_seen) == (State.SUCCEEDED, 0)


# -- refused sync tokens -------------------------------------------------------------------


@live_sync
def test_a_refused_sync_token_reads_that_book_in_full_once_and_the_log_says_so(
    peer, integration_for, sync, http_spy
):
    family, work = peer.new_books(("family", "Family"), ("work", "Work"))
    for uid in ("a", "b", "c"):
        family.add(uid, given=uid.upper(), family="Lee")
    work.add("boss", given="Boss", family="Ng")
    integration = integration_for(family)
    assert sync(integration).items_created == 4
    tokens = decode_cursor(integration.sync_cursor)
    key = book_key(family.path)
    # A token in the server's own form that it never issued.
    stale = tokens[key][:-8] + "00000000"
    Integration.objects.filter(pk=integration.pk).update(sync_cursor=encode_cursor({**tokens, key: stale}))
    integration.refresh_from_db()
    work.edit("boss", "FN:Boss", "FN:Big Boss")
    http_spy.clear()

    quick = sync(integration, kind=Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)

    assert quick.state == State.SUCCEEDED, quick.error_message
    # Family in full (unchanged), Work's one change read quickly.
    assert (quick.items_seen, quick.items_unchanged, quick.items_updated) == (4, 3, 1)
    refused = [m for m in messages(quick) if "refused the sync token" in m]
    assert len(refused) == 1 and family.path in refused[0], messages(quick)
    assert f"(HTTP {REFUSAL_STATUS[peer.name]})" in refused[0]
    asked_with_stale = [body for method, _, _, body in http_spy if stale.encode() in body]
    assert len(asked_with_stale) == 1
    fresh = decode_cursor(integration.sync_cursor)
    assert fresh.keys() == tokens.keys() and fresh[key] != stale


@live_sync
@pytest.mark.parametrize(
    "status, body",
    [(403, b""), (409, b""), (412, b""), (400, VALID_SYNC_TOKEN_ERROR)],
    ids=["403", "409", "412", "400-valid-sync-token"],
)
def test_every_way_of_refusing_a_token_reads_the_book_in_full(peer, integration_for, sync, status, body):
    book = peer.new_book()
    book.add("a", given="A", family="Lee")
    book.add("b", given="B", family="Lee")
    with FaultProxy(peer.url) as proxy:
        integration = integration_for(book, url=proxy.url)
        assert sync(integration).items_created == 2
        proxy.answer(is_sync_collection_from_a_token, status, body, {"Content-Type": "text/xml"})

        quick = sync(integration, kind=Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)

    assert quick.state == State.SUCCEEDED, quick.error_message
    assert (quick.items_seen, quick.items_unchanged) == (2, 2)
    assert any(f"refused the sync token of {book.path} (HTTP {status})" in m for m in messages(quick))
    assert len([r for r in proxy.requests if is_sync_collection_from_a_token(r)]) == 1
    assert decode_cursor(integration.sync_cursor)


# -- marking: only CATEGORIES changes, byte for byte -----------------------------------------

FOLD_RE = re.compile(rb"\r\n[ \t]")


def lines_of(data):
    """The physical lines of a vCard, each with the continuation lines of its fold."""
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b""), data
    logical = []
    for line in data[:-2].split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and logical:
            logical[-1] += b"\r\n" + line
        else:
            logical.append(line)
    return logical


def is_categories(line):
    return line.upper().startswith(b"CATEGORIES")


def categories_value(data):
    line = next(line for line in lines_of(data) if is_categories(line))
    return FOLD_RE.sub(b"", line).decode().partition(":")[2]


def card_with_a_long_categories_line(uid):
    """A vCard whose CATEGORIES, once marked, has an "ö" across its 75th octet, with a long folded NOTE."""
    head = "CATEGORIES:Kundinnen aus Köln,Geschäftspartner,"
    line = head + "Landesamt" + "x" * (74 - len(head.encode()) - 9) + "öffentliche Hand"
    assert line.encode()[74:76] == "ö".encode()
    note = "NOTE:Rückruf erbeten – Straße, Größe, Maß; " * 4
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:Zoë\r\nN:;Zoë;;;\r\n"
        # Folded as a client folds, at other places than 75 octets.
        f"{line[:40]}\r\n {line[40:]}\r\n"
        f"{note[:60]}\r\n {note[60:120]}\r\n {note[120:]}\r\n"
        "X-ABC;X-PARAM=Wert:ÄÖÜ äöü\r\n"
        "END:VCARD\r\n"
    )


def assert_only_categories_changed(served, written, *, marked):
    """`written` is `served` with the marker added or removed: CRLF, folded at 75 octets, the rest as is."""
    for line in written.split(b"\r\n"):
        assert len(line) <= 75, line
        line.decode("utf-8")  # no UTF-8 sequence split by a fold
    assert [line for line in lines_of(written) if not is_categories(line)] == [
        line for line in lines_of(served) if not is_categories(line)
    ]
    before = categories_value(served)
    after = f"{before},Sync Error" if marked else before.replace(",Sync Error", "")
    assert categories_value(written) == after


@live_sync
def test_marking_changes_only_the_categories_line_and_keeps_every_other_byte(
    peer, integration_for, sync, http_spy
):
    book = peer.new_book()
    book.add("zoe", card_with_a_long_categories_line("zoe"))  # no last name: it gets the marker
    served, _ = book.get("zoe")
    integration = integration_for(book, mark_source_items=True)

    session = sync(integration)

    assert set(open_issues(integration)) == {("zoe", "ITEM_MISSING_FIELD")}
    puts = [body for method, _, _, body in http_spy if method == "PUT"]
    assert len(puts) == 1, messages(session)
    assert_only_categories_changed(served, puts[0], marked=True)
    stored, _ = book.get("zoe")
    assert "Sync Error" in book.categories("zoe")
    # The server kept every other line as it was.
    assert [line for line in lines_of(stored) if not is_categories(line)] == [
        line for line in lines_of(served) if not is_categories(line)
    ]

    # Fixed on the server: the next full sync takes the marker off, again touching nothing else.
    book.edit("zoe", "N:;Zoë;;;", "N:Ürban;Zoë;;;")
    served, _ = book.get("zoe")
    http_spy.clear()
    again = sync(integration)

    assert not open_issues(integration), messages(again)
    puts = [body for method, _, _, body in http_spy if method == "PUT"]
    assert len(puts) == 1, messages(again)
    assert_only_categories_changed(served, puts[0], marked=False)
    assert "Sync Error" not in book.categories("zoe")


# -- a contact the server cannot serve -------------------------------------------------------

MALFORMED = b'<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>'


@live_sync
@pytest.mark.parametrize(
    "fault, alone",
    [("error", "fails"), ("malformed", "fails"), ("error", "works")],
    ids=["http-500", "malformed-answer", "http-500-but-a-get-works"],
)
def test_a_contact_the_server_cannot_serve_is_one_issue_and_the_rest_of_the_book_syncs(
    peer, integration_for, sync, fault, alone
):
    book = peer.new_book()
    for n in range(9):
        book.add(f"c{n}", given="Zoë" if n == 3 else f"Person {n}", family="" if n == 6 else "Lee")
    bad = f"{book.path}c3.vcf"
    with FaultProxy(peer.url) as proxy:

        def asks_for_the_bad_one(request):
            return is_multiget(request) and bad.encode() in request.body

        if fault == "error":
            proxy.answer(asks_for_the_bad_one, 500, b"Internal Server Error")
        else:
            proxy.answer(asks_for_the_bad_one, 207, MALFORMED, {"Content-Type": "application/xml"})
        if alone == "fails":
            proxy.answer(lambda r: r.method == "GET" and r.path == bad, 500, b"Internal Server Error")
        integration = integration_for(book, url=proxy.url, page_size=4, mark_source_items=True)

        session = sync(integration)
        proxy_url = proxy.url

    assert session.state == State.WARNINGS, session.error_message
    assert any("asking again in halves" in m for m in messages(session)), messages(session)
    records = set(SyncedRecord.objects.filter(integration=integration).values_list("external_id", flat=True))
    readable = {f"c{n}" for n in range(9) if n != 3}
    assert (session.items_seen, session.items_created) == (9, 9)
    if alone == "works":
        assert records == readable | {"c3"}
        assert set(open_issues(integration)) == {("c6", "ITEM_MISSING_FIELD")}
        # Read with a GET (Xandikos names no charset: a vCard is UTF-8).
        assert SyncedRecord.objects.get(integration=integration, external_id="c3").data["n"]["given"] == "Zoë"
        return
    assert records == readable | {bad}
    issues = open_issues(integration)
    assert set(issues) == {(bad, "ITEM_INVALID_VALUE"), ("c6", "ITEM_MISSING_FIELD")}
    issue = issues[bad, "ITEM_INVALID_VALUE"]
    assert bad in issue.message and issue.details["href"] == bad
    assert issue.vendor_url == book.url("c3", base=proxy_url)
    # Marking went on past the contact it could not read.
    assert book.categories("c6") == ["Sync Error"]
    assert any(f"Contact {bad} could not be read" in m for m in messages(session)), messages(session)


@live_sync
def test_a_server_that_cannot_serve_any_contact_fails_the_sync(peer, integration_for, sync):
    book = peer.new_book()
    for n in range(12):
        book.add(f"c{n}", given=f"Person {n}", family="Lee")
    with FaultProxy(peer.url) as proxy:
        proxy.answer(is_multiget, 207, MALFORMED, {"Content-Type": "application/xml"})
        proxy.answer(lambda r: r.method == "GET", 400, b"no")
        integration = integration_for(book, url=proxy.url)

        session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == "VENDOR_BAD_RESPONSE"
    assert "could not serve more than 10 contacts" in session.error_message


# -- servers with and without authentication --------------------------------------------------


@pytest.mark.django_db
def test_no_credentials_for_a_server_that_asks_for_them_is_auth_invalid(radicale_server):  # noqa: F811
    with VendorHttp() as http:
        connector = CardDavConnector({}, {"url": radicale_server.url}, http)
        with pytest.raises(errors.AuthInvalid, match="asks for a username and password"):
            connector.check_credentials()


def test_username_and_password_go_together():
    url = "http://dav.example/"
    for half in ({"username": "ann"}, {"password": "secret"}):
        _, problems = CardDavConnector.clean_credentials({}, {"url": url, **half})
        assert any("go together" in problem for problem in problems), problems
    assert CardDavConnector.clean_credentials({}, {"url": url})[1] == []
    assert CardDavConnector({}, {"url": url}, http=None).auth is None
