"""The filtered issue list as CSV (issues/export.py): from the console's changelist and from the portal's Issues tab.

Each download is streamed (a StreamingHttpResponse, read here to the end as
a browser would), holds exactly the rows its list holds with the filters and
search of the page it came from (every page of it), never another tenant's,
writes no cell a spreadsheet would run as a formula, refuses a wrong filter
with 400, and costs the same number of queries for 3 issues as for 120.
"""

import csv
import io
from datetime import timedelta
from datetime import timezone as dt_timezone

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.models import Membership
from issues import export
from issues.models import ErrorCode, SyncIssue
from tests.factories import IntegrationFactory, SyncIssueFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db
ADMIN_EXPORT = reverse("admin:issues_syncissue_export")
CHANGELIST = reverse("admin:issues_syncissue_changelist")
State = SyncIssue.State


def read_csv(response):
    """(header, rows) of a streamed CSV download."""
    assert response.status_code == 200, response
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="issues-')
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(body)))
    return header, rows


def portal_export(integration):
    return reverse("portal:issues_csv", args=[integration.pk])


@pytest.fixture
def two_tenants(acme, member):
    """Acme (three issues on its integration, one on another) and Globex (two issues with the same words)."""
    now = timezone.now()
    code = ErrorCode.objects.get
    SyncIssue.objects.filter(pk=acme.issue.pk).update(last_seen_at=now - timedelta(minutes=1))
    acme.resolved = SyncIssueFactory(
        integration=acme.integration,
        item_label="Invoice 41",
        state=State.RESOLVED,
        error_code=code(pk="ITEM_INVALID_VALUE"),
        last_seen_at=now - timedelta(minutes=2),
    )
    acme.crafted = SyncIssueFactory(
        integration=acme.integration,
        external_id="=cmd|' /C calc'!A0",
        item_label="@SUM(1+1)*cmd|' /C calc'!A0",
        message="+1 555 0100 is not a phone number",
        vendor_url="https://vendor.example/items/-1",
        last_seen_at=now + timedelta(minutes=1),
        occurrences=4,
    )
    acme.mailbox = IntegrationFactory(tenant=acme.tenant, name="Acme mailbox")
    acme.mailbox_issue = SyncIssueFactory(integration=acme.mailbox, item_label="Contact 1")
    globex = TenantFactory(name="Globex", slug="globex")
    globex_billing = IntegrationFactory(tenant=globex, name="Globex billing")
    acme.globex = globex
    acme.globex_billing = globex_billing
    acme.globex_admin = member(globex, Membership.Role.ADMIN, username="gwen")
    acme.globex_issues = [
        SyncIssueFactory(integration=globex_billing, item_label="Invoice 42 of Globex"),
        SyncIssueFactory(integration=globex_billing, item_label="Invoice 43 of Globex", state=State.IGNORED),
    ]
    return acme


# -- the cells -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+1 555", "'+1 555"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Invoice =1", "Invoice =1"),
        ("", ""),
        (None, ""),
        (12, "12"),
    ],
)
def test_a_cell_that_would_be_a_formula_is_written_as_text(value, written):
    assert export.csv_cell(value) == written


# -- the console ----------------------------------------------------------------------------------


def test_the_console_exports_the_filtered_and_searched_list_with_every_page(two_tenants, support_client, monkeypatch):
    acme = two_tenants
    changelist = support_client.get(CHANGELIST, {"state__exact": "open", "q": "Acme"})
    assert f'href="{ADMIN_EXPORT}?q=Acme&amp;state__exact=open"' in changelist.content.decode()

    header, rows = read_csv(support_client.get(ADMIN_EXPORT, {"state__exact": "open", "q": "Acme"}))

    assert header == ["Tenant", *export.COLUMNS]
    listed = [issue.pk for issue in changelist.context["cl"].result_list]
    assert len(rows) == len(listed) == 3  # open issues of Acme's integrations, newest first, as listed
    ids = [SyncIssue.objects.get(pk=pk).external_id for pk in listed]
    assert [row[8] for row in rows] == [f"'{i}" if i.startswith("=") else i for i in ids]
    crafted = rows[0]
    assert crafted == [
        "Acme",
        "Acme billing",
        "ITEM_MISSING_FIELD",
        "Item is missing a required field",
        "'+1 555 0100 is not a phone number",
        "Error",
        "Open",
        "'@SUM(1+1)*cmd|' /C calc'!A0",
        "'=cmd|' /C calc'!A0",
        "4",
        acme.crafted.first_seen_at.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        acme.crafted.last_seen_at.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "https://vendor.example/items/-1",
    ]
    assert {row[1] for row in rows} == {"Acme billing", "Acme mailbox"}

    # More than a page (two a page here): the export holds all of them.
    monkeypatch.setattr(changelist.context["cl"].model_admin, "list_per_page", 2)
    assert len(support_client.get(CHANGELIST).context["cl"].result_list) == 2
    _, everything = read_csv(support_client.get(ADMIN_EXPORT))
    assert len(everything) == SyncIssue.objects.count() == 6
    assert {row[0] for row in everything} == {"Acme", "Globex"}  # staff export every tenant's, named


def test_the_console_export_refuses_wrong_filters_and_needs_the_view_permission(two_tenants, support_client, staff_client):
    for params in (
        {"no_such_filter": "1"},
        {"integration__id__exact": "abc"},
        {"q": "a\x00b"},
        {"state__exact": "open\x00"},
    ):
        response = support_client.get(ADMIN_EXPORT, params)
        assert response.status_code == 400, params
        assert not response.streaming
        assert "Nothing was exported" in response.content.decode() or "nothing was exported" in response.content.decode()
    assert "no_such_filter" in support_client.get(ADMIN_EXPORT, {"no_such_filter": "1"}).content.decode()

    outsider = UserFactory(username="outsider", is_staff=True)
    outsider.user_permissions.add(Permission.objects.get(codename="view_integration"))
    refused = staff_client(outsider).get(ADMIN_EXPORT)
    assert refused.status_code == 403
    assert not refused.streaming


def measure(client, url, params=None):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {})
        header, rows = read_csv(response)  # the rows are read while streaming: count those queries too
    return len(rows), len(queries)


def grow(integration, n, now):
    SyncIssue.objects.bulk_create(
        [
            SyncIssue(
                tenant_id=integration.tenant_id,
                integration=integration,
                error_code_id=("ITEM_MISSING_FIELD", "ITEM_DUPLICATE")[k % 2],
                item_type="item",
                external_id=f"grown-{integration.pk}-{k}",
                item_label=f"Grown {k}",
                first_seen_at=now,
                last_seen_at=now - timedelta(seconds=k),
            )
            for k in range(n)
        ]
    )


def test_the_console_export_costs_the_same_queries_for_many_rows(two_tenants, support_client):
    acme = two_tenants
    support_client.get(ADMIN_EXPORT)  # per-process caches
    small_rows, small = measure(support_client, ADMIN_EXPORT, {"q": "Acme"})
    # New integrations and tenants too: a row following them without select_related would query per row.
    for n in range(6):
        grow(IntegrationFactory(tenant=TenantFactory(name=f"Acme {n}"), name=f"Acme grown {n}"), 20, timezone.now())
    large_rows, large = measure(support_client, ADMIN_EXPORT, {"q": "Acme"})

    assert (small_rows, large_rows) == (4, 124)
    assert large == small, (small, large)
    assert acme  # the fixture's rows are part of both


# -- the portal -------------------------------------------------------------------------------------


def test_the_portal_exports_the_issues_tab_with_its_filters(two_tenants, log_in):
    acme = two_tenants
    client = log_in(acme.victor)  # a viewer: reading is for every member
    tab = client.get(reverse("portal:issues", args=[acme.integration.pk]), {"state": "all"})
    link = f'href="{portal_export(acme.integration)}?code=&amp;category=&amp;severity=&amp;state=all&amp;q="'
    assert link in tab.content.decode()

    header, rows = read_csv(client.get(portal_export(acme.integration), {"state": "all"}))

    assert header == list(export.COLUMNS)  # no tenant column: it is theirs
    assert [row[6] for row in rows] == [acme.crafted.item_label.replace("@", "'@", 1), "Invoice 42", "Invoice 41"]
    assert {row[0] for row in rows} == {"Acme billing"}
    _, open_only = read_csv(client.get(portal_export(acme.integration)))  # the tab's default: open
    assert [row[5] for row in open_only] == ["Open", "Open"]
    _, by_code = read_csv(client.get(portal_export(acme.integration), {"state": "all", "code": "ITEM_INVALID_VALUE"}))
    assert [row[6] for row in by_code] == ["Invoice 41"]
    _, searched = read_csv(client.get(portal_export(acme.integration), {"q": "Invoice 4"}))
    assert [row[6] for row in searched] == ["Invoice 42"]


def test_the_portal_export_never_holds_another_tenants_issues(two_tenants, log_in):
    acme = two_tenants
    client = log_in(acme.grace)

    assert client.get(portal_export(acme.globex_billing), {"state": "all"}).status_code == 404
    for integration in (acme.integration, acme.mailbox):
        _, rows = read_csv(client.get(portal_export(integration), {"state": "all"}))
        text = "\n".join(",".join(row) for row in rows)
        assert "Globex" not in text
        assert rows
    # Globex's own member gets theirs, and nothing of Acme.
    _, theirs = read_csv(log_in(acme.globex_admin).get(portal_export(acme.globex_billing), {"state": "all"}))
    assert sorted(row[6] for row in theirs) == ["Invoice 42 of Globex", "Invoice 43 of Globex"]


def test_the_portal_export_refuses_a_wrong_filter_with_the_tab_and_its_message(two_tenants, log_in):
    client = log_in(two_tenants.grace)

    for params, words in (
        ({"severity": "loud"}, "Unknown severity 'loud'"),
        ({"state": "closed"}, "Unknown state 'closed'"),
        ({"code": "NO_SUCH_CODE"}, "Unknown error code 'NO_SUCH_CODE'"),
        ({"q": "x" * 201}, "The search text is too long"),
    ):
        response = client.get(portal_export(two_tenants.integration), params)
        assert response.status_code == 400, params
        assert not response.streaming
        assert words in response.content.decode().replace("&#x27;", "'"), params


def test_the_portal_export_is_for_members_only(two_tenants, log_in, staff_client, support_user):
    url = portal_export(two_tenants.integration)
    anonymous = Client()
    assert anonymous.get(url).status_code == 302
    assert anonymous.get(url)["Location"].startswith(reverse("portal:login"))
    assert staff_client(support_user).get(url).status_code == 403  # staff are not portal users
    assert log_in(two_tenants.grace).post(url).status_code == 405  # reading only


def test_the_portal_export_costs_the_same_queries_for_many_rows(two_tenants, log_in):
    acme = two_tenants
    client = log_in(acme.grace)
    url = portal_export(acme.integration)
    client.get(url)
    small_rows, small = measure(client, url, {"state": "all"})
    grow(acme.integration, 120, timezone.now())
    large_rows, large = measure(client, url, {"state": "all"})

    assert (small_rows, large_rows) == (3, 123)
    assert large == small, (small, large)


def open_cursors():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
@pytest.mark.django_db(transaction=True)
def test_a_long_export_reads_chunk_after_chunk_from_a_cursor_it_closes(error_catalog, support_client, monkeypatch):
    """As in production: no transaction around the request, the rows read while the answer is sent, a chunk
    at a time from a server-side cursor held open (WITH HOLD) between the chunks; an answer nobody reads
    opens none, and one closed half-way (the client went away) closes it."""
    monkeypatch.setattr(export, "CHUNK_SIZE", 100)
    integration = IntegrationFactory(name="Pax8 billing")
    grow(integration, 350, timezone.now())

    unread = support_client.get(ADMIN_EXPORT)
    assert isinstance(unread, StreamingHttpResponse)
    assert open_cursors() == 0

    response = support_client.get(ADMIN_EXPORT)
    lines = iter(response.streaming_content)
    header, first = next(lines), next(lines)
    assert not connection.in_atomic_block  # autocommit: the cursor outlives each statement
    assert open_cursors() == 1
    rows = list(csv.reader(io.StringIO(first.decode() + b"".join(lines).decode("utf-8"))))
    assert open_cursors() == 0
    assert header.decode("utf-8-sig").startswith("Tenant,Integration,Code")
    assert len(rows) == 350
    assert [row[8] for row in rows[:2]] == [f"grown-{integration.pk}-0", f"grown-{integration.pk}-1"]

    half = support_client.get(ADMIN_EXPORT)
    lines = iter(half.streaming_content)
    next(lines), next(lines)
    assert open_cursors() == 1
    half.close()
    assert open_cursors() == 0
