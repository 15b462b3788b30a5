"""The `carddav` connector against a real Radicale server (tests/plugins/radicale.py).

Every sync is real: create_integration discovers the address books over
CardDAV, start_sync queues the session on commit, the inline broker runs it,
and the connector reads and marks contacts on Radicale over loopback.
"""

import socket

import pytest
from django.core.management import CommandError, call_command

from integrations.connectors import carddav, errors
from integrations.connectors.carddav import (
    CardDavConnector,
    decode_cursor,
    encode_cursor,
    parse_multistatus,
    with_marker,
)
from integrations.connectors.http import VendorHttp
from integrations.models import Integration, SyncedRecord, SyncSession
from integrations.onboarding import create_integration
from integrations.sync.finishing import SessionLog
from issues.models import SyncIssue
from tests.factories import TenantFactory
from tests.plugins.radicale import RadicaleProcess, make_vcard, radicale_server  # noqa: F401
from tests.plugins.raw_http import serve_raw
from tests.plugins.simulator import SimulatorProcess

Status = Integration.Status
State = SyncSession.State
Kind = SyncSession.Kind
live_sync = pytest.mark.django_db(transaction=True)


class Book:
    """One user's address book on a Radicale server, as a test fills and inspects it."""

    def __init__(self, server, user, name="contacts", password="secret"):
        self.server, self.user, self.name, self.password = server, user, name, password

    @property
    def path(self):
        return self.server.book_path(self.user, self.name)

    def url(self, uid):
        return self.server.card_url(self.user, self.name, f"{uid}.vcf")

    def credentials(self, password=None):
        return {"url": self.server.url, "username": self.user, "password": password or self.password}

    def add(self, uid, **fields):
        text = make_vcard(uid, **fields)
        response = self.server.put_vcard(self.user, self.name, f"{uid}.vcf", text, create_only=True)
        assert response.status_code == 201, response.text
        return uid

    def get(self, uid):
        return self.server.get_vcard(self.user, self.name, f"{uid}.vcf")

    def categories(self, uid):
        return self.server.categories(self.user, self.name, f"{uid}.vcf")

    def edit(self, uid, old, new):
        """Change the stored vCard as a client would: GET, edit the text, PUT with If-Match."""
        text, etag = self.get(uid)
        assert old in text, text
        edited = text.replace(old, new)
        response = self.server.put_vcard(self.user, self.name, f"{uid}.vcf", edited, if_match=etag)
        assert response.status_code in (201, 204), response.text
        return edited


@pytest.fixture
def new_book(radicale_server):  # noqa: F811
    def make(*, server=None, name="contacts", displayname=None):
        server = server or radicale_server
        user = server.new_user()
        server.create_addressbook(user, name, displayname)
        return Book(server, user, name)

    return make


@pytest.fixture
def carddav_integration(error_catalog):
    """A CardDAV integration created through onboarding; the first sync is left to the test."""

    def make(book, *, password=None, **settings):
        return create_integration(
            TenantFactory(),
            "carddav",
            f"Contacts of {book.user}",
            settings=settings,
            credentials=book.credentials(password),
            queue_first_sync=False,
        )

    return make


@pytest.fixture
def http_spy(monkeypatch):
    """Every request the connectors send: (method, url, headers, body)."""
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


# -- issues, links and the "Sync Error" marker ---------------------------------------


@live_sync
def test_first_sync_opens_the_right_issues_and_marks_them_and_a_fix_resolves_and_unmarks(
    new_book, carddav_integration, sync, http_spy
):
    book = new_book(displayname="Customers")
    book.add("ann", given="Ann", family="Lee", emails=["ann@example.com"], phones=["+1 555 0100"], org="Acme")
    book.add("bob", given="Bob", emails=["bob@example.com"])  # no last name
    book.add("cy", given="Cy", family="Ng", emails=["cy-at-example.com"])  # invalid email
    book.add("di", given="Di", family="Ox", emails=["ANN@Example.com"])  # Ann's email again
    book.add("eve", given="Eve", family="Poe", emails=["eve@example.com"], categories=["friends"])

    integration = carddav_integration(book, mark_source_items=True)
    assert integration.status == Status.SETUP
    mapping = integration.account_mappings.get()
    assert (mapping.vendor_account_id, mapping.vendor_account_name) == (book.path, "Customers")
    assert mapping.is_mapped

    session = sync(integration)

    assert session.state == State.WARNINGS
    assert (session.items_seen, session.items_created, session.items_warnings) == (5, 5, 3)
    assert integration.status == Status.QUALITY_ASSURANCE  # a first sync with item issues
    issues = open_issues(integration)
    assert set(issues) == {
        ("bob", "ITEM_MISSING_FIELD"),
        ("cy", "ITEM_INVALID_VALUE"),
        ("di", "ITEM_DUPLICATE"),
    }
    records = {r.external_id: r for r in SyncedRecord.objects.filter(integration=integration)}
    for (uid, _), issue in issues.items():
        assert issue.vendor_url == book.url(uid)  # the vCard on the server
        assert issue.record_id == records[uid].pk  # our copy
        assert issue.item_type == "contact"
    assert "ann@example.com" in issues["di", "ITEM_DUPLICATE"].message.lower()
    assert issues["di", "ITEM_DUPLICATE"].details["other_external_id"] == "ann"
    assert issues["cy", "ITEM_INVALID_VALUE"].details == {"field": "EMAIL", "value": "cy-at-example.com"}
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

    # The contacts with issues carry the marker on the server; the others do not.
    assert {uid: book.categories(uid) for uid in ("ann", "bob", "cy", "di", "eve")} == {
        "ann": [],
        "bob": ["Sync Error"],
        "cy": ["Sync Error"],
        "di": ["Sync Error"],
        "eve": ["friends"],
    }
    puts = [(headers, body) for method, _, headers, body in http_spy if method == "PUT"]
    assert len(puts) == 3 and all(headers.get("If-Match") for headers, _ in puts)

    # Someone adds Bob's last name on the server (keeping the categories, as clients do).
    book.edit("bob", "N:;Bob;;;", "N:Bee;Bob;;;")

    quick = sync(integration, kind=Kind.QUICK)

    assert quick.state == State.SUCCEEDED  # it met no contact with a problem (Cy's and Di's stay open)
    # Only Bob changed: marking moved the sync token past its own edits.
    assert (quick.items_seen, quick.items_updated) == (1, 1)
    assert set(open_issues(integration)) == {("cy", "ITEM_INVALID_VALUE"), ("di", "ITEM_DUPLICATE")}
    resolved = SyncIssue.objects.get(integration=integration, external_id="bob")
    assert resolved.state == SyncIssue.State.RESOLVED and resolved.resolved_at is not None
    assert SyncedRecord.objects.get(integration=integration, external_id="bob").data["n"]["family"] == "Bee"
    assert book.categories("bob") == []
    assert book.categories("cy") == ["Sync Error"]
    assert "N:Bee;Bob;;;" in book.get("bob")[0]

    # Marking alone does not make contacts look changed: a full re-read finds nothing new.
    full = sync(integration, kind=Kind.FULL)
    assert (full.items_seen, full.items_updated, full.items_unchanged) == (5, 0, 5)


@live_sync
def test_a_fixed_duplicate_loses_its_marker_when_a_full_sync_settles_it(new_book, carddav_integration, sync):
    book = new_book()
    book.add("ann", given="Ann", family="Lee", emails=["ann@example.com"])
    book.add("di", given="Di", family="Ox", emails=["ann@example.com"])
    integration = carddav_integration(book, mark_source_items=True)
    first = sync(integration)
    assert book.categories("di") == ["Sync Error"], (first.log, open_issues(integration))

    book.edit("di", "ann@example.com", "di@example.com")
    sync(integration, kind=Kind.FULL)

    assert not open_issues(integration)
    assert book.categories("di") == []


@live_sync
def test_without_the_option_nothing_is_written_to_the_server(new_book, carddav_integration, sync, http_spy):
    book = new_book()
    book.add("bob", given="Bob")
    integration = carddav_integration(book)

    session = sync(integration)

    assert set(open_issues(integration)) == {("bob", "ITEM_MISSING_FIELD")}
    assert book.categories("bob") == []
    assert [method for method, *_ in http_spy if method not in ("PROPFIND", "REPORT")] == []
    assert session.items_created == 1


# -- read then mark: a concurrent edit is never overwritten ---------------------------


@live_sync
def test_a_contact_edited_between_read_and_mark_keeps_the_edit(
    new_book, carddav_integration, sync, monkeypatch
):
    book = new_book()
    book.add("bob", given="Bob", emails=["bob@example.com"])
    integration = carddav_integration(book, mark_source_items=True)
    real_mark = CardDavConnector.mark_items

    def edit_then_mark(self, **kwargs):
        # The sync has read Bob; now someone edits him before the marker is written.
        book.edit("bob", "FN:Bob", "FN:Bob\r\nNOTE:called on Monday")
        return real_mark(self, **kwargs)

    monkeypatch.setattr(CardDavConnector, "mark_items", edit_then_mark)
    session = sync(integration)

    text, _ = book.get("bob")
    assert "NOTE:called on Monday" in text  # the edit survived
    assert book.categories("bob") == ["Sync Error"]  # and the marker went onto the current copy
    messages = [entry["message"] for entry in session.log]
    assert any("412" in m and "bob" in m for m in messages), messages


@live_sync
def test_a_contact_that_keeps_changing_is_left_alone_and_logged(
    new_book, carddav_integration, sync, monkeypatch
):
    book = new_book()
    book.add("bob", given="Bob")
    integration = carddav_integration(book, mark_source_items=True)
    real_mark, real_fetch = CardDavConnector.mark_items, CardDavConnector.fetch_card
    edits = iter(["NOTE:first edit", "TEL:+1 555 0199"])

    def edit():
        book.edit("bob", "FN:Bob", f"FN:Bob\r\n{next(edits)}")

    def edit_then_mark(self, **kwargs):
        edit()
        return real_mark(self, **kwargs)

    def fetch_then_edit(self, href):
        card = real_fetch(self, href)
        edit()  # the fresh copy is stale again before the second PUT
        return card

    monkeypatch.setattr(CardDavConnector, "mark_items", edit_then_mark)
    monkeypatch.setattr(CardDavConnector, "fetch_card", fetch_then_edit)
    session = sync(integration)

    assert session.state == State.WARNINGS  # marking is best effort; the sync itself completed
    text, _ = book.get("bob")
    assert "NOTE:first edit" in text and "TEL:+1 555 0199" in text
    assert book.categories("bob") == []  # never forced
    warnings = [e["message"] for e in session.log if e["level"] == "warning"]
    assert any("412" in m and "not marked" in m for m in warnings), warnings


@pytest.mark.django_db
def test_mark_items_never_puts_without_if_match_and_skips_contacts_already_marked(new_book, http_spy):
    book = new_book()
    book.add("bob", given="Bob", categories=["Sync Error"])
    book.add("cy", given="Cy")
    with VendorHttp() as http:
        connector = CardDavConnector({}, book.credentials(), http)
        log = SessionLog(50)
        # A connector that read nothing in this run looks the contacts up by UID.
        connector.mark_items(mark={"bob", "cy"}, unmark=set(), log=log)

    puts = [(url, headers) for method, url, headers, _ in http_spy if method == "PUT"]
    assert [url for url, _ in puts] == [book.url("cy")]
    assert all(headers.get("If-Match") for _, headers in puts)
    assert book.categories("bob") == ["Sync Error"] and book.categories("cy") == ["Sync Error"]


# -- server answers ---------------------------------------------------------------------


@live_sync
def test_a_wrong_password_is_auth_invalid_and_auth_failing(new_book, carddav_integration, sync):
    book = new_book()
    book.add("ann", given="Ann", family="Lee")
    integration = carddav_integration(book, password="not-the-password")

    session = sync(integration)

    assert session.state == State.FAILED
    assert session.error_code_id == "AUTH_INVALID"
    assert "401" in session.error_message
    assert integration.status == Status.AUTH_FAILING
    assert not SyncedRecord.objects.filter(integration=integration).exists()


@live_sync
def test_another_users_address_book_is_auth_forbidden(new_book, carddav_integration, sync):
    mine, theirs = new_book(), new_book()
    integration = carddav_integration(mine, addressbook=theirs.path)

    session = sync(integration)

    assert session.error_code_id == "AUTH_FORBIDDEN"
    assert integration.status == Status.AUTH_FAILING


@live_sync
def test_a_deleted_address_book_is_a_bad_response_that_says_so(new_book, carddav_integration, sync):
    book = new_book()
    book.add("ann", given="Ann", family="Lee")
    integration = carddav_integration(book, addressbook=book.path)
    assert sync(integration).state == State.SUCCEEDED
    response = book.server._http.delete(book.server.url.rstrip("/") + book.path, auth=(book.user, "secret"))
    assert response.status_code in (200, 204)

    session = sync(integration, kind=Kind.QUICK)

    assert session.error_code_id == "VENDOR_BAD_RESPONSE"
    assert f"The address book {book.path} does not exist" in session.error_message
    assert integration.status == Status.FAILING


@live_sync
def test_an_unknown_address_book_name_is_a_bad_response(new_book, carddav_integration, sync):
    book = new_book(displayname="Customers")
    integration = carddav_integration(book, addressbook="Suppliers")

    session = sync(integration)

    assert session.error_code_id == "VENDOR_BAD_RESPONSE"
    assert "no address book named 'Suppliers'" in session.error_message
    assert "'Customers'" in session.error_message


@live_sync
def test_stopping_radicale_mid_run_is_vendor_unavailable_and_keeps_what_was_written(
    carddav_integration, sync, monkeypatch, tmp_path
):
    with RadicaleProcess(root=tmp_path) as server:
        user = server.new_user()
        server.create_addressbook(user)
        book = Book(server, user)
        for n in range(20):
            book.add(f"c{n:02d}", given=f"Person {n}", family="" if n in (1, 7) else "Lee")
        integration = carddav_integration(book, page_size=5)
        real_pages = CardDavConnector.iter_pages

        def stop_after_first_page(self, **kwargs):
            for number, page in enumerate(real_pages(self, **kwargs)):
                yield page  # the engine writes the page before it asks for the next one
                if number == 0:
                    server.stop()

        monkeypatch.setattr(CardDavConnector, "iter_pages", stop_after_first_page)
        session = sync(integration)

        assert session.state == State.FAILED
        assert session.error_code_id == "VENDOR_UNAVAILABLE"
        assert (session.pages, session.items_seen, session.items_created) == (1, 5, 5)
        assert session.retries >= 1
        records = SyncedRecord.objects.filter(integration=integration)
        assert set(records.values_list("external_id", flat=True)) == {"c00", "c01", "c02", "c03", "c04"}
        assert set(open_issues(integration)) == {("c01", "ITEM_MISSING_FIELD")}
        assert integration.status == Status.QUALITY_ASSURANCE
        assert integration.sync_cursor == ""

        # Back up: the next sync reads the rest and finds the first five unchanged.
        monkeypatch.setattr(CardDavConnector, "iter_pages", real_pages)
        server.start()
        again = sync(integration)
        assert again.state == State.WARNINGS
        assert (again.items_seen, again.items_created, again.items_unchanged) == (20, 15, 5)
        assert set(open_issues(integration)) == {("c01", "ITEM_MISSING_FIELD"), ("c07", "ITEM_MISSING_FIELD")}


@live_sync
def test_a_server_that_does_not_answer_is_vendor_timeout(carddav_integration, sync, error_catalog):
    # A socket that accepts connections (the kernel does) and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        integration = create_integration(
            TenantFactory(),
            "carddav",
            "Silent server",
            settings={"addressbook": "/someone/contacts/"},
            credentials={"url": f"http://127.0.0.1:{port}/", "username": "someone", "password": "x"},
            queue_first_sync=False,
        )
        session = sync(integration)

    assert session.error_code_id == "VENDOR_TIMEOUT"
    assert integration.status == Status.QUALITY_ASSURANCE


@pytest.mark.parametrize(
    "body, message",
    [
        (b"<multistatus xmlns='DAV:'><response><href>/a/</href>", "malformed XML"),
        (b"<html><body>Welcome</body></html>", "not a DAV:multistatus"),
        (b"", "malformed XML"),
    ],
)
def test_malformed_answers_are_bad_responses(body, message):
    with pytest.raises(errors.BadResponse, match=message):
        parse_multistatus(body, "the listing")


@live_sync
def test_a_malformed_answer_fails_the_sync_as_vendor_bad_response(carddav_integration, sync, error_catalog):
    answer = b"HTTP/1.0 207 Multi-Status\r\nContent-Type: text/xml\r\n\r\n<multistatus xmlns='DAV:'><resp"
    server, port = serve_once(answer)
    try:
        integration = create_integration(
            TenantFactory(),
            "carddav",
            "Broken server",
            settings={"addressbook": "/someone/contacts/"},
            credentials={"url": f"http://127.0.0.1:{port}/", "username": "someone", "password": "x"},
            queue_first_sync=False,
        )
        session = sync(integration)
    finally:
        server.close()
    assert session.error_code_id == "VENDOR_BAD_RESPONSE"
    assert "malformed XML" in session.error_message


def serve_once(answer):
    """A loopback server that answers every request with the same raw bytes.

    It reads the whole request (headers and body) before answering: closing a
    socket with unread bytes makes the kernel reset the connection, and the
    client would then see a dropped connection instead of the answer.
    """
    return serve_raw(lambda conn: conn.sendall(answer))


# -- quick syncs -----------------------------------------------------------------------


@live_sync
def test_a_quick_sync_after_changing_3_of_2000_contacts_fetches_only_those_3(
    radicale_server, carddav_integration, sync, http_spy, settings  # noqa: F811
):
    # Radicale lists 2,000 contacts in about a second; the test settings' 1.5 s is for fault tests.
    settings.VENDOR_READ_TIMEOUT = 20
    user = radicale_server.new_user()
    cards = [
        (f"p{n:04d}.vcf", make_vcard(f"p{n:04d}", given=f"Person {n}", family="Lee", emails=[f"p{n}@a.test"]))
        for n in range(2000)
    ]
    radicale_server.seed_addressbook(user, "contacts", cards, displayname="Everyone")
    book = Book(radicale_server, user)
    integration = carddav_integration(book)
    first = sync(integration)
    assert first.state == State.SUCCEEDED, first.error_message
    assert (first.items_seen, first.items_created) == (2000, 2000)
    assert first.pages == 10  # addressbook-multiget of 200 contacts each
    assert integration.status == Status.ACTIVE and integration.sync_cursor

    changed = ["p0007", "p1000", "p1999"]
    for uid in changed:
        book.edit(uid, "FN:Person", "FN:Dr Person")
    http_spy.clear()
    offset = radicale_server.log_offset()

    quick = sync(integration, kind=Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)

    assert quick.state == State.SUCCEEDED
    assert (quick.items_seen, quick.items_updated, quick.items_unchanged) == (3, 3, 0)
    # Discovery (3 PROPFINDs: /.well-known/carddav, which Radicale redirects to /, then the
    # principal and the home), one sync-collection, one addressbook-multiget of the 3.
    assert quick.http_requests == 5
    multigets = [body for method, _, _, body in http_spy if b"addressbook-multiget" in body]
    assert len(multigets) == 1
    assert multigets[0].count(b"<D:href>") == 3
    assert all(f"{uid}.vcf".encode() in multigets[0] for uid in changed)
    seen_by_server = radicale_server.requests_since(offset)
    assert sorted(method for method, _ in seen_by_server) == ["PROPFIND"] * 4 + ["REPORT"] * 2
    assert seen_by_server[:2] == [("PROPFIND", "/.well-known/carddav"), ("PROPFIND", "/")]
    renamed = SyncedRecord.objects.filter(integration=integration, data__fn__startswith="Dr ")
    assert set(renamed.values_list("external_id", flat=True)) == set(changed)


@live_sync
def test_a_refused_sync_token_falls_back_to_reading_everything(new_book, carddav_integration, sync):
    book = new_book()
    for uid in ("a", "b", "c"):
        book.add(uid, given=uid.upper(), family="Lee")
    integration = carddav_integration(book)
    sync(integration)
    tokens = decode_cursor(integration.sync_cursor)
    assert list(tokens) == [carddav.book_key(book.path)]
    # A token the server has never issued (or has forgotten): Radicale answers 403 valid-sync-token.
    unknown = {key: "http://radicale.org/ns/sync/" + "0" * 64 for key in tokens}
    Integration.objects.filter(pk=integration.pk).update(sync_cursor=encode_cursor(unknown))
    integration.refresh_from_db()

    quick = sync(integration, kind=Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE)

    assert quick.state == State.SUCCEEDED
    assert (quick.items_seen, quick.items_unchanged) == (3, 3)
    assert decode_cursor(integration.sync_cursor).keys() == tokens.keys()
    assert decode_cursor(integration.sync_cursor) != unknown


@live_sync
def test_several_address_books_are_vendor_accounts_and_the_setting_picks_one(
    radicale_server, carddav_integration, sync  # noqa: F811
):
    user = radicale_server.new_user()
    radicale_server.create_addressbook(user, "family", "Family")
    radicale_server.create_addressbook(user, "work", "Work")
    family, work = Book(radicale_server, user, "family"), Book(radicale_server, user, "work")
    family.add("mum", given="Mum", family="Lee")
    work.add("boss", given="Boss", family="Ng")

    both = carddav_integration(family)
    assert sorted(both.account_mappings.values_list("vendor_account_id", "vendor_account_name")) == [
        (family.path, "Family"),
        (work.path, "Work"),
    ]
    session = sync(both)
    assert session.items_created == 2
    assert len(decode_cursor(both.sync_cursor)) == 2 and len(both.sync_cursor) <= 200
    assert sync(both, kind=Kind.QUICK, trigger=SyncSession.Trigger.SCHEDULE).items_seen == 0

    only_work = carddav_integration(work, addressbook="Work")
    assert list(only_work.account_mappings.values_list("vendor_account_id", flat=True)) == [work.path]
    sync(only_work)
    assert [r.external_id for r in SyncedRecord.objects.filter(integration=only_work)] == ["boss"]


@pytest.mark.django_db
def test_credentials_are_checked_against_the_server(new_book):
    book = new_book()
    with VendorHttp() as http:
        good = {"url": book.server.url, "username": book.user, "password": "secret"}
        CardDavConnector({}, good, http).check_credentials()
        with pytest.raises(errors.AuthInvalid):
            CardDavConnector({}, {**good, "password": "wrong"}, http).check_credentials()
    _, problems = CardDavConnector.clean_credentials({}, {"url": "ftp://x", "username": "u", "password": "p"})
    assert problems == ["Credential url: is not an http(s) URL: 'ftp://x'."]
    _, problems = CardDavConnector.clean_settings({"page_size": "0"})
    assert problems == ["Setting page_size: must be at least 1, got 0."]


# -- the demo -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.slow
def test_seed_demo_adds_a_carddav_integration_with_warnings_and_stays_idempotent(radicale_server):  # noqa: F811
    user = radicale_server.new_user("demo")
    # A simulator of its own: seeding changes the demo accounts (outages), which
    # the shared one must not keep for test_seed_demo.
    with SimulatorProcess() as simulator:
        options = ["--simulator-url", simulator.base_url, "--carddav-url", radicale_server.url]
        options += ["--carddav-user", user, "--carddav-password", "secret"]
        call_command("seed_demo", *options, stdout=open("/dev/null", "w"))
        counts = (Integration.objects.count(), SyncSession.objects.count())
        call_command("seed_demo", *options, stdout=open("/dev/null", "w"))
        assert (Integration.objects.count(), SyncSession.objects.count()) == counts

    statuses = set(Integration.objects.values_list("status", flat=True))
    assert statuses == set(Integration.Status.values)
    contacts = Integration.objects.get(name="Mailbox contacts", connector="carddav")
    assert contacts.status == Status.WARNINGS and contacts.tenant.slug == "acme"
    assert sorted(code for _, code in open_issues(contacts)) == [
        "ITEM_DUPLICATE",
        "ITEM_INVALID_VALUE",
        "ITEM_MISSING_FIELD",
        "ITEM_MISSING_FIELD",
        "ITEM_MISSING_FIELD",
    ]
    assert ("demo-liskov-work", "ITEM_DUPLICATE") in open_issues(contacts)
    assert radicale_server.categories(user, "contacts", "demo-grace.vcf") == ["Sync Error"]
    assert radicale_server.categories(user, "contacts", "demo-ada.vcf") == []


@pytest.mark.django_db
def test_seed_demo_says_clearly_when_radicale_does_not_answer(vendor_simulator):
    with pytest.raises(CommandError, match="CardDAV server does not answer"):
        call_command(
            "seed_demo", "--simulator-url", vendor_simulator.base_url, "--carddav-url", "http://127.0.0.1:9"
        )


# -- pieces -------------------------------------------------------------------------------


def test_with_marker_edits_only_the_categories():
    text = make_vcard("x", given="A", family="B", note="a long note " * 8).replace("NOTE:", "NOTE;X-A=b:")
    marked = with_marker(text, True)
    assert marked.replace("CATEGORIES:Sync Error\r\n", "") == text
    assert with_marker(marked, True) is None
    assert with_marker(marked, False) == text
    assert with_marker(text, False) is None

    tagged = make_vcard("y", given="A", family="B", categories=["friends", "a,b"])
    assert "CATEGORIES:friends,a\\,b,Sync Error\r\n" in with_marker(tagged, True)
    assert with_marker(with_marker(tagged, True), False) == tagged
    folded = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:z\r\nCATEGORIES:Sync \r\n Error,vip\r\nEND:VCARD\r\n"
    assert with_marker(folded, False) == folded.replace("CATEGORIES:Sync \r\n Error,vip", "CATEGORIES:vip")


def test_with_marker_writes_crlf_and_folds_the_line_it_edits_at_75_octets():
    # Out of an XML answer the CRs are gone (XML parsers turn CRLF into LF).
    categories = "CATEGORIES:" + "x" * 62 + "Köln"  # "ö" would straddle octets 75 and 76
    text = f"BEGIN:VCARD\nVERSION:3.0\nUID:k\nNOTE:{'ä' * 30}\n {'ü' * 3}\n{categories}\nEND:VCARD\n"

    marked = with_marker(text, True)

    assert marked == text.replace("\n", "\r\n").replace(
        categories, "CATEGORIES:" + "x" * 62 + "K\r\n öln,Sync Error"
    )
    assert all(len(line.encode()) <= 75 for line in marked.split("\r\n"))
    # Taking it off again folds the line too (it came longer than 75 octets).
    assert with_marker(marked, False) == marked.replace(",Sync Error", "")
    assert carddav.vcard.fold("a" * 200) == "\r\n ".join(["a" * 75, "a" * 74, "a" * 51])


def test_an_unreadable_vcard_is_an_item_problem_not_a_failed_sync():
    connector = CardDavConnector({}, {"url": "http://dav.example/", "username": "u", "password": "p"}, http=None)
    book = carddav.VendorAccount("/u/contacts/", "Contacts")
    broken = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:broken-1\r\nN:Lee;Ann\r\nBEGIN:VCARD\r\n"

    item = connector.item(book, "/u/contacts/broken.vcf", '"e1"', broken)

    assert item.external_id == "broken-1"
    assert item.vendor_url == "http://dav.example/u/contacts/broken.vcf"
    assert [p.code for p in item.problems] == ["ITEM_INVALID_VALUE"]
    assert item.data == {"href": "/u/contacts/broken.vcf", "unreadable": True}


def test_the_cursor_keeps_within_200_characters():
    token = "http://radicale.org/ns/sync/"
    two = {"aaaaaaaa": token + "1" * 64, "bbbbbbbb": token + "2" * 64}
    assert decode_cursor(encode_cursor(two)) == two
    assert len(encode_cursor(two)) <= 200
    three = {**two, "cccccccc": token + "3" * 64}
    kept = decode_cursor(encode_cursor(three))
    assert len(encode_cursor(three)) <= 200 and kept.items() <= three.items() and len(kept) == 2
    assert decode_cursor("2024-01-01T00:00:00Z") == {} and encode_cursor({}) == ""
    assert decode_cursor(encode_cursor({"k": "x" * 300})) == {}
