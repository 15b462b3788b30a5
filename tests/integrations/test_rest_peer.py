"""The `rest` connector against json-server 0.17.4, a REST server nobody here wrote.

json-server runs as a process (tests/plugins/json_server.py). Integrations
are created the way the documentation tells a newcomer (`manage.py
add_integration ... --setting KEY=VALUE`), and syncs run through the real
engine: a queued session, run inline by `run_session`. Counts are exact:
json-server's `contacts` has CONTACTS rows, BAD_EMAILS among them.
"""

from datetime import UTC, datetime, timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from integrations.connectors.rest.connector import RestConnector
from integrations.models import Integration, PageFingerprint, SyncedRecord, SyncSession
from integrations.sync.runner import run_session
from integrations.sync.starting import start_sync
from issues.models import SyncIssue
from tests.factories import TenantFactory
from tests.plugins.json_server import BAD_EMAILS, COMPANIES, CONTACTS, PRODUCTS, stamp

pytestmark = [pytest.mark.jsonserver, pytest.mark.django_db]

State = SyncSession.State


def add_rest(*settings):
    """An integration made by one `add_integration` command: `--setting` strings only, no credential."""
    tenant = TenantFactory()
    arguments = [tenant.slug, "rest", "--name", "json-server", "--no-sync"]
    for setting in settings:
        arguments += ["--setting", setting]
    out = StringIO()
    call_command("add_integration", *arguments, stdout=out)
    return Integration.objects.get(pk=int(out.getvalue()))


def sync(integration, kind=SyncSession.Kind.FULL):
    session = start_sync(integration, kind=kind, trigger=SyncSession.Trigger.STAFF, enqueue=False)
    session = run_session(session.pk)
    integration.refresh_from_db()
    return session


def gets(server, offset, count):
    """(path, {name: value}) of each GET json-server logged since `offset`."""
    logged = server.requests_since(offset, method="GET", at_least=count)
    assert all(status == 200 for _, _, status in logged), logged
    return [
        (urlsplit(target).path, {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()})
        for _, target, _ in logged
    ]


def contact_ids(integration):
    return set(
        SyncedRecord.objects.filter(integration=integration, deleted=False).values_list(
            "external_id", flat=True
        )
    )


# -- pagination -------------------------------------------------------------------------


def test_link_header_pages_from_one_add_integration_command(json_server, error_catalog):
    """The command of docs/CONNECTORS.md, as a newcomer types it.

    json-server sends a Link header only when the request names a page: with
    `pagination.page_param` given, the first request carries `_page=1`.
    """
    integration = add_rest(
        f"base_url={json_server.url}",
        "items.endpoint=/contacts",
        "pagination.type=link_header",
        "pagination.page_param=_page",
        "pagination.size_param=_limit",
        "pagination.size=100",
    )
    assert integration.settings["pagination.size"] == 100
    assert not integration.has_credentials
    offset = json_server.log_offset()

    session = sync(integration)

    assert (session.state, session.error_code_id, session.error_message) == (State.SUCCEEDED, None, "")
    assert (session.items_seen, session.items_created, session.items_updated) == (CONTACTS, CONTACTS, 0)
    assert (session.pages, session.http_requests, session.items_warnings) == (13, 13, 0)
    assert contact_ids(integration) == {str(n) for n in range(1, CONTACTS + 1)}
    # Page 1 as the settings ask, then each `next` link until the last page has none.
    assert gets(json_server, offset, 13) == [
        ("/contacts", {"_page": str(n), "_limit": "100"}) for n in range(1, 14)
    ]
    record = SyncedRecord.objects.get(integration=integration, external_id="42")
    assert record.data == json_server.get("/contacts/42")
    assert not SyncIssue.objects.filter(integration=integration).exists()
    assert integration.status == Integration.Status.ACTIVE


def test_a_page_number_in_the_item_parameters_works_too(json_server, error_catalog):
    """The same list with `_page` given as a plain item parameter (a number, as JSON allows)."""
    integration = add_rest(
        f"base_url={json_server.url}",
        "items.endpoint=/contacts",
        'items.params={"_page": 1}',
        "pagination.type=link_header",
        "pagination.size_param=_limit",
    )

    session = sync(integration)

    assert (session.state, session.items_seen, session.pages) == (State.SUCCEEDED, CONTACTS, 13)


def test_page_numbers_stop_at_the_total_header(json_server, error_catalog):
    integration = add_rest(
        f"base_url={json_server.url}",
        "items.endpoint=/contacts",
        "pagination.type=page",
        "pagination.page_param=_page",
        "pagination.size_param=_limit",
        "pagination.size=100",
        "pagination.total_header=X-Total-Count",
    )
    offset = json_server.log_offset()

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert (session.items_seen, session.items_created, session.items_total) == (CONTACTS, CONTACTS, CONTACTS)
    # 13 pages hold 1,234 contacts: the total ends the list, no empty 14th page is asked for.
    assert (session.pages, session.http_requests) == (13, 13)
    assert gets(json_server, offset, 13) == [
        ("/contacts", {"_limit": "100", "_page": str(n)}) for n in range(1, 14)
    ]
    assert len(contact_ids(integration)) == CONTACTS


@pytest.mark.parametrize(
    "total_header, starts",
    [
        # The total ends the list after the fifth slice (1,000 + 234).
        ("pagination.total_header=X-Total-Count", [0, 250, 500, 750, 1000]),
        # Without it an empty slice does; the offset counts the items read.
        (None, [0, 250, 500, 750, 1000, 1234]),
    ],
)
def test_offset_and_limit(json_server, error_catalog, total_header, starts):
    settings = [
        f"base_url={json_server.url}",
        "items.endpoint=/contacts",
        "pagination.type=offset",
        "pagination.offset_param=_start",
        "pagination.size_param=_limit",
        "pagination.size=250",
    ]
    integration = add_rest(*settings, *([total_header] if total_header else []))
    offset = json_server.log_offset()

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert (session.items_seen, session.items_created) == (CONTACTS, CONTACTS)
    assert session.http_requests == len(starts)
    assert gets(json_server, offset, len(starts)) == [
        ("/contacts", {"_limit": "250", "_start": str(n)}) for n in starts
    ]
    assert len(contact_ids(integration)) == CONTACTS


# -- item rules ---------------------------------------------------------------------------

PAGED = (
    "items.endpoint=/contacts",
    "pagination.type=offset",
    "pagination.offset_param=_start",
    "pagination.size_param=_limit",
    "pagination.size=500",
    "pagination.total_header=X-Total-Count",
)


def test_email_rule_opens_one_issue_per_bad_email(json_server, error_catalog):
    integration = add_rest(f"base_url={json_server.url}", *PAGED, "rules.email_fields=email")
    assert integration.settings["rules.email_fields"] == ["email"]

    session = sync(integration)

    assert session.state == State.WARNINGS
    assert (session.items_seen, session.items_created, session.items_warnings) == (
        CONTACTS,
        CONTACTS,
        len(BAD_EMAILS),
    )
    issues = SyncIssue.objects.filter(integration=integration)
    assert issues.count() == len(BAD_EMAILS)
    assert set(issues.values_list("error_code_id", "state").distinct()) == {
        ("ITEM_INVALID_VALUE", SyncIssue.State.OPEN)
    }
    assert {i.external_id: i.details["value"] for i in issues} == {
        str(n): email for n, email in BAD_EMAILS.items()
    }
    assert issues.get(external_id="99").item_label == "Contact 99"
    # Items with problems are stored all the same.
    assert len(contact_ids(integration)) == CONTACTS


def test_no_rules_no_issues(json_server, error_catalog):
    """The rules are empty unless set: bad emails, empty emails and all, nothing is an issue."""
    integration = add_rest(f"base_url={json_server.url}", *PAGED)

    session = sync(integration)

    assert session.state == State.SUCCEEDED
    assert (session.items_seen, session.items_warnings, session.items_failed) == (CONTACTS, 0, 0)
    assert not SyncIssue.objects.filter(integration=integration).exists()


# -- quick syncs ------------------------------------------------------------------------


def test_a_quick_sync_reads_only_what_changed_since_the_last_run(json_server, error_catalog):
    """`companies` is this test's to write: json-server keeps POST and PATCH in its db.json."""
    integration = add_rest(
        f"base_url={json_server.url}",
        "items.endpoint=/companies",
        'items.params={"_page": "1"}',
        "pagination.type=link_header",
        "pagination.size_param=_limit",
        "pagination.size=3",
        "incremental.type=updated_since",
        "incremental.param=updatedAt_gte",
    )
    offset = json_server.log_offset()
    first = sync(integration)
    assert first.state == State.SUCCEEDED
    pages = -(-COMPANIES // 3)
    assert (first.items_seen, first.items_created, first.pages) == (COMPANIES, COMPANIES, pages)
    # A full sync sends no changed-since parameter.
    assert all("updatedAt_gte" not in query for _, query in gets(json_server, offset, pages))
    cursor = integration.sync_cursor
    assert cursor

    now = stamp(datetime.now(UTC))
    for company in (3, 17, 29):
        json_server.patch("companies", company, {"name": f"Company {company} (renamed)", "updatedAt": now})
    json_server.post("companies", {"id": COMPANIES + 1, "name": "Newcomer", "updatedAt": now})
    offset = json_server.log_offset()

    quick = sync(integration, kind=SyncSession.Kind.QUICK)

    assert quick.state == State.SUCCEEDED
    assert (quick.items_seen, quick.items_created, quick.items_updated, quick.items_unchanged) == (4, 1, 3, 0)
    # Four changed rows in pages of three: the `next` link keeps the filter.
    since = stamp(datetime.fromisoformat(cursor) - timedelta(seconds=300))
    assert gets(json_server, offset, 2) == [
        ("/companies", {"_page": "1", "_limit": "3", "updatedAt_gte": since}),
        ("/companies", {"_page": "2", "_limit": "3", "updatedAt_gte": since}),
    ]
    assert quick.http_requests == 2
    records = SyncedRecord.objects.filter(integration=integration)
    assert records.filter(deleted=False).count() == COMPANIES + 1
    assert records.get(external_id="17").data["name"] == "Company 17 (renamed)"
    assert records.get(external_id="18").data["name"] == "Company 18"


def test_an_unchanged_full_resync_skips_the_pages_the_server_sends_again(json_server, error_catalog, monkeypatch):
    """Page fingerprints (sync/fingerprints.py) against a server nobody here wrote: `products` is this test's."""
    parsed = []
    original = RestConnector.parse_items

    def counting(self, rows):
        parsed.extend(row["id"] for row in rows)
        return original(self, rows)

    monkeypatch.setattr(RestConnector, "parse_items", counting)
    integration = add_rest(
        f"base_url={json_server.url}",
        "items.endpoint=/products",
        "pagination.type=link_header",
        "pagination.page_param=_page",
        "pagination.size_param=_limit",
        "pagination.size=50",
    )
    records = SyncedRecord.objects.filter(integration=integration)

    first = sync(integration)
    assert (first.state, first.items_created, first.pages) == (State.SUCCEEDED, PRODUCTS, 5)
    assert PageFingerprint.objects.filter(integration=integration).count() == 5
    parsed.clear()

    again = sync(integration)
    assert (again.state, again.items_seen, again.items_unchanged, again.items_created, again.items_updated) == (
        State.SUCCEEDED, PRODUCTS, PRODUCTS, 0, 0
    )
    assert (again.items_deleted, again.pages, parsed) == (0, 5, [])
    assert records.filter(deleted=False).count() == PRODUCTS

    json_server.patch("products", "p-0123", {"name": "Product 123 (renamed)"})
    json_server.delete("products", "p-0250")
    third = sync(integration)
    assert third.state == State.SUCCEEDED
    assert (third.items_updated, third.items_deleted, third.items_unchanged) == (1, 1, PRODUCTS - 2)
    # Only the two pages that changed were read: the third (p-0101..p-0150) and the last.
    assert sorted(parsed) == [f"p-{n:04d}" for n in list(range(101, 151)) + list(range(201, 250))]
    assert records.get(external_id="p-0123").data["name"] == "Product 123 (renamed)"
    assert records.get(external_id="p-0250").deleted
    assert records.filter(deleted=False).count() == PRODUCTS - 1
