"""The console's issue page: Resolve / Ignore / Reopen, what the catalog says, both records, occurrences over time;
and the issue search by integration, tenant and code.

Logged in as staff through the login backend, POSTing the page's buttons,
following the redirect and reading back the issue, the integration's stored
open-issue count (against a real COUNT), the audit trail and the admin's
history.
"""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditRecord
from integrations.models import Integration, SyncSession
from issues import occurrences, services
from issues.models import ErrorCode, SyncIssue
from tests.factories import (
    IntegrationFactory,
    SyncedRecordFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    TenantFactory,
    UserFactory,
)

State = SyncIssue.State
pytestmark = pytest.mark.django_db


def page_url(issue):
    return reverse("admin:issues_syncissue_change", args=[issue.pk])


def button_url(issue, name):
    return reverse(f"admin:issues_syncissue_{name}", args=[issue.pk])


def text(response):
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def panel(response, panel_id):
    content = response.content.decode()
    start = content.index(f'id="{panel_id}"')
    return content[start : content.index('<div class="sc-panel"', start + 1) if '<div class="sc-panel"' in content[start + 1 :] else None]


def open_counts(integration):
    """(the stored count, the real count) of the integration's open issues."""
    stored = Integration.objects.values_list("open_issue_count", flat=True).get(pk=integration.pk)
    return stored, SyncIssue.objects.filter(integration=integration, state=State.OPEN).count()


def audit_of(issue):
    return list(AuditRecord.objects.filter(target__startswith=f"Issue {issue.pk}:").order_by("pk"))


def snapshot(integration):
    return (
        list(SyncIssue.objects.filter(integration=integration).order_by("pk").values()),
        open_counts(integration),
        AuditRecord.objects.count(),
        LogEntry.objects.count(),
    )


@pytest.fixture
def issue_reader(staff_groups):
    """A staff member who may read issues and not resolve them."""
    user = UserFactory(username="reader", first_name="Rita", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_syncissue"))
    return user


@pytest.fixture
def three_open(acme):
    """Acme's integration with three open issues (the stored count says 3)."""
    SyncIssueFactory(integration=acme.integration, item_label="Invoice 43")
    SyncIssueFactory(integration=acme.integration, item_label="Invoice 44")
    assert open_counts(acme.integration) == (3, 3)
    return acme


# -- Resolve, Ignore, Reopen ------------------------------------------------------------------------


@pytest.mark.parametrize(("button", "state"), [("resolve", State.RESOLVED), ("ignore", State.IGNORED)])
def test_closing_then_reopening_moves_the_count_and_is_audited(three_open, support_client, support_user, button, state):
    acme = three_open
    page = support_client.get(page_url(acme.issue))
    assert f'formaction="{button_url(acme.issue, button)}"' in page.content.decode()
    assert "sc-issue-reopen" not in page.content.decode()  # an open issue cannot be reopened

    response = support_client.post(button_url(acme.issue, button), {"note": "Fixed at the vendor"}, follow=True)

    assert response.redirect_chain == [(page_url(acme.issue), 302)]
    acme.issue.refresh_from_db()
    assert (acme.issue.state, acme.issue.resolved_by, acme.issue.resolution_note) == (
        state,
        support_user,
        "Fixed at the vendor",
    )
    assert acme.issue.resolved_at is not None
    assert open_counts(acme.integration) == (2, 2)
    assert f"The issue is {state.label.lower()} now." in text(response)
    assert 'id="sc-issue-reopen"' in response.content.decode()
    (closed,) = audit_of(acme.issue)
    assert (closed.action, closed.actor, closed.tenant_id) == (AuditRecord.Action.STAFF_ACTION, support_user, acme.tenant.pk)
    assert closed.changes == {"state": ["open", state], "note": "Fixed at the vendor"}

    response = support_client.post(button_url(acme.issue, "reopen"), {"note": "Came back"}, follow=True)

    assert response.redirect_chain == [(page_url(acme.issue), 302)]
    acme.issue.refresh_from_db()
    assert (acme.issue.state, acme.issue.resolved_by, acme.issue.resolved_at, acme.issue.resolution_note) == (
        State.OPEN,
        None,
        None,
        "",
    )
    assert open_counts(acme.integration) == (3, 3)
    closed, reopened = audit_of(acme.issue)
    assert reopened.changes == {"state": [state, "open"], "note": "Came back", "closing_note": "Fixed at the vendor"}
    history = list(LogEntry.objects.filter(object_id=str(acme.issue.pk)).order_by("pk").values_list("change_message", flat=True))
    assert history == [f"{state.label}: Fixed at the vendor", "Open: Came back"]


def test_reopening_is_refused_while_another_open_issue_holds_the_item_and_code(acme, support_client):
    integration = acme.integration
    old = SyncIssueFactory(
        integration=integration,
        external_id="inv-42",
        item_label="Invoice 42 (first time)",
        state=State.RESOLVED,
        resolved_at=timezone.now() - timedelta(days=1),
        resolution_note="The customer fixed it",
    )
    current = SyncIssueFactory(integration=integration, external_id="inv-42", item_label="Invoice 42 (again)")
    before = snapshot(integration)

    page = support_client.get(page_url(old))
    reopen = re.search(r'<button[^>]*id="sc-issue-reopen"[^>]*>', page.content.decode()).group(0)
    assert "disabled" in reopen  # impossible: disabled, with the reason beside it
    assert f"Issue {current.pk} is open for the same item and code" in text(page)
    assert page_url(current) in panel(page, "sc-issue-state")

    response = support_client.post(button_url(old, "reopen"), {"note": "Try again"})

    assert response.status_code == 409
    assert f"Issue {current.pk} is open for the same item and code" in text(response)
    assert "Nothing was changed." in text(response)
    assert snapshot(integration) == before
    # The same item with another code is no twin: that one reopens.
    other_code = SyncIssueFactory(
        integration=integration,
        external_id="inv-42",
        error_code=ErrorCode.objects.get(pk="ITEM_INVALID_VALUE"),
        state=State.IGNORED,
    )
    assert support_client.post(button_url(other_code, "reopen"), {"note": "n"}).status_code == 302
    other_code.refresh_from_db()
    assert other_code.state == State.OPEN


def test_a_reader_without_the_resolve_permission_sees_no_button_and_is_refused(acme, staff_client, issue_reader):
    client = staff_client(issue_reader)
    closed = SyncIssueFactory(integration=acme.integration, state=State.RESOLVED)
    before = snapshot(acme.integration)

    page = client.get(page_url(acme.issue))
    assert page.status_code == 200
    assert "sc-issue-change" not in page.content.decode()
    assert "needs the permission “Can resolve and ignore issues”" in text(page)

    for issue, button in ((acme.issue, "resolve"), (acme.issue, "ignore"), (closed, "reopen")):
        response = client.post(button_url(issue, button), {"note": "n"})
        assert response.status_code == 403
        assert "Can resolve and ignore issues" in text(response)  # the console's refusal page names it
    assert snapshot(acme.integration) == before


def test_wrong_input_changes_nothing(acme, support_client):
    closed = SyncIssueFactory(integration=acme.integration, state=State.IGNORED)
    before = snapshot(acme.integration)

    no_note = support_client.post(button_url(acme.issue, "resolve"), {"note": "  "})
    assert no_note.status_code == 400
    assert "Say why in the note" in text(no_note)
    too_long = support_client.post(button_url(acme.issue, "resolve"), {"note": "x" * 501})
    assert too_long.status_code == 400
    twice = support_client.post(button_url(closed, "ignore"), {"note": "n"})
    assert twice.status_code == 409
    assert "This issue is ignored already; nothing was changed." in text(twice)
    reopen_open = support_client.post(button_url(acme.issue, "reopen"), {"note": "n"})
    assert reopen_open.status_code == 409
    assert support_client.get(button_url(acme.issue, "resolve")).status_code == 405
    assert support_client.post(reverse("admin:issues_syncissue_resolve", args=[10**9]), {"note": "n"}).status_code == 404
    assert snapshot(acme.integration) == before


def test_the_counter_stays_exact_when_a_sync_closed_the_issue_first(acme, support_client):
    """The page was read while the issue was open; a sync resolved it before the click: nothing moves twice."""
    integration = acme.integration
    page = support_client.get(page_url(acme.issue))
    assert f'formaction="{button_url(acme.issue, "resolve")}"' in page.content.decode()
    services.close_issues(SyncIssue.objects.filter(pk=acme.issue.pk), State.RESOLVED, actor=None, note="The item synced cleanly.")
    assert open_counts(integration) == (0, 0)

    response = support_client.post(button_url(acme.issue, "resolve"), {"note": "n"})

    assert response.status_code == 409
    assert open_counts(integration) == (0, 0)


# -- what the page shows ----------------------------------------------------------------------------


def test_the_page_shows_the_catalogs_advice_and_support_notes(acme, support_client):
    code = ErrorCode.objects.get(pk="ITEM_MISSING_FIELD")

    response = support_client.get(page_url(acme.issue))

    advice = unescape(panel(response, "sc-issue-advice"))
    assert code.customer_advice in advice
    assert code.support_notes in advice
    assert reverse("admin:issues_errorcode_change", args=[code.pk]) in advice


def test_the_page_links_both_records(acme, support_client):
    record = SyncedRecordFactory(integration=acme.integration, item_type="item", external_id="inv-7")
    linked = SyncIssueFactory(
        integration=acme.integration, external_id="inv-7", record=record, vendor_url="https://vendor.example/invoices/7"
    )
    # The record exists, the issue was written without the link: found by its item.
    unlinked = SyncIssueFactory(
        integration=acme.integration,
        external_id="inv-7",
        error_code=ErrorCode.objects.get(pk="ITEM_INVALID_VALUE"),
    )
    never_stored = SyncIssueFactory(integration=acme.integration, external_id="inv-8", vendor_url="javascript:alert(1)")
    record_url = reverse("admin:integrations_syncedrecord_change", args=[record.pk])

    records = panel(support_client.get(page_url(linked)), "sc-issue-records")
    assert f'href="{record_url}"' in records
    assert 'href="https://vendor.example/invoices/7"' in records
    assert f'href="{record_url}"' in panel(support_client.get(page_url(unlinked)), "sc-issue-records")
    records = panel(support_client.get(page_url(never_stored)), "sc-issue-records")
    assert "none stored for this item" in records
    assert "javascript:" not in records
    assert "no link: the vendor's data gave none" in unescape(records)


def session(integration, minutes_ago, state=SyncSession.State.SUCCEEDED, code=None, **fields):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return SyncSessionFactory(
        integration=integration,
        state=state,
        error_code_id=code,
        queued_at=at,
        started_at=at,
        finished_at=at + timedelta(seconds=20),
        **fields,
    )


def occurrence_rows(response):
    table = panel(response, "sc-issue-occurrences")
    rows = re.findall(r"<tr class=\"sc-met-([a-z-]+)\"><td><a href=\"[^\"]+\">(\d+)</a>", table)
    return [(int(pk), met) for met, pk in rows]


def test_a_session_level_issue_shows_the_syncs_that_ended_with_its_code(acme, support_client):
    integration = acme.integration
    before = session(integration, 300, SyncSession.State.FAILED, "VENDOR_TIMEOUT")  # outside the range
    first = session(integration, 240, SyncSession.State.FAILED, "VENDOR_UNAVAILABLE")
    other = session(integration, 180, SyncSession.State.FAILED, "VENDOR_TIMEOUT")
    again = session(integration, 120, SyncSession.State.FAILED, "VENDOR_UNAVAILABLE")
    last = session(integration, 60, SyncSession.State.FAILED, "VENDOR_UNAVAILABLE")
    session(IntegrationFactory(tenant=acme.tenant), 100, SyncSession.State.FAILED, "VENDOR_UNAVAILABLE")  # another integration
    issue = SyncIssueFactory(
        integration=integration,
        item_type="",
        external_id="",
        error_code=ErrorCode.objects.get(pk="VENDOR_UNAVAILABLE"),
        first_session=first,
        last_session=last,
        occurrences=3,
        first_seen_at=first.finished_at,
        last_seen_at=last.finished_at,
    )

    response = support_client.get(page_url(issue))

    assert occurrence_rows(response) == [
        (last.pk, "met"),
        (again.pk, "met"),
        (other.pk, "not-met"),
        (first.pk, "met"),
    ]
    assert before.pk not in dict(occurrence_rows(response))
    occurrences_panel = panel(response, "sc-issue-occurrences")
    assert "Seen in 3 syncs between" in occurrences_panel
    dots = re.findall(r'<circle class="sc-occurrence"[^>]*>', occurrences_panel)
    assert len(dots) == 4
    assert sum('fill="#b91c1c"' in dot for dot in dots) == 3  # filled: met it
    assert f"Session {other.pk} · Failed (VENDOR_TIMEOUT)" in occurrences_panel  # each dot says what it was


def test_an_item_issue_shows_what_is_known_and_says_the_rest_is_not_recorded(acme, support_client):
    integration = acme.integration
    first = session(integration, 200, SyncSession.State.WARNINGS, items_warnings=2)
    between = [session(integration, m, SyncSession.State.WARNINGS, items_warnings=1) for m in (150, 100)]
    last = session(integration, 50, SyncSession.State.WARNINGS, items_warnings=1)
    session(integration, 10)  # after the last: not in the range
    issue = SyncIssueFactory(
        integration=integration, first_session=first, last_session=last, occurrences=3,
        first_seen_at=first.finished_at, last_seen_at=last.finished_at,
    )

    response = support_client.get(page_url(issue))

    assert occurrence_rows(response) == [
        (last.pk, "met"),
        (between[1].pk, "not-recorded"),
        (between[0].pk, "not-recorded"),
        (first.pk, "met"),
    ]
    summary = text(response)
    assert "Seen in 3 syncs between" in summary
    assert "which syncs in between met it is not recorded, only the first and the last" in summary


def test_the_range_is_bounded_and_the_page_says_so(acme, support_client, monkeypatch):
    monkeypatch.setattr(occurrences, "SESSIONS_SHOWN", 5)
    integration = acme.integration
    sessions = [session(integration, 10 * n + 10) for n in range(8)]  # newest first
    issue = SyncIssueFactory(
        integration=integration, first_session=sessions[-1], last_session=sessions[0], occurrences=8,
        first_seen_at=sessions[-1].finished_at, last_seen_at=sessions[0].finished_at,
    )

    response = support_client.get(page_url(issue))

    assert [pk for pk, _ in occurrence_rows(response)] == [s.pk for s in sessions[:5]]
    assert "The latest 5 syncs of the range are shown." in text(response)


def test_when_retention_removed_the_sessions_the_page_says_so(acme, support_client):
    response = support_client.get(page_url(acme.issue))  # no first or last session kept

    occurrences_panel = unescape(panel(response, "sc-issue-occurrences"))
    assert "The syncs that met it are no longer kept (retention)." in occurrences_panel
    assert "Seen in 1 sync, on" in occurrences_panel


def test_the_page_costs_the_same_queries_however_long_the_range(acme, support_client):
    integration = acme.integration
    first, last = session(integration, 500), session(integration, 5)
    issue = SyncIssueFactory(
        integration=integration, first_session=first, last_session=last, occurrences=2,
        record=SyncedRecordFactory(integration=integration), vendor_url="https://vendor.example/1",
        first_seen_at=first.finished_at, last_seen_at=last.finished_at,
    )

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert support_client.get(page_url(issue)).status_code == 200
        return len(captured)

    support_client.get(page_url(issue))  # per-process caches
    small = queries()
    for n in range(40):
        session(integration, 10 + n * 10, SyncSession.State.FAILED, "VENDOR_TIMEOUT")
    assert len(occurrence_rows(support_client.get(page_url(issue)))) == 42
    assert queries() == small


# -- search ---------------------------------------------------------------------------------------


@pytest.fixture
def searchable(error_catalog):
    acme, globex = TenantFactory(name="Acme Corp"), TenantFactory(name="Globex")
    pax8 = IntegrationFactory(tenant=acme, name="Pax8 billing")
    hubspot = IntegrationFactory(tenant=globex, name="HubSpot contacts")
    code = ErrorCode.objects.get
    return {
        "pax8_missing": SyncIssueFactory(integration=pax8, external_id="a-1"),
        "pax8_auth": SyncIssueFactory(integration=pax8, item_type="", external_id="", error_code=code(pk="AUTH_EXPIRED")),
        "hubspot_dup": SyncIssueFactory(integration=hubspot, external_id="b-1", error_code=code(pk="ITEM_DUPLICATE")),
        "hubspot_auth": SyncIssueFactory(
            integration=hubspot, item_type="", external_id="", error_code=code(pk="AUTH_INVALID")
        ),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("Pax8", ["pax8_missing", "pax8_auth"]),  # the integration's name
        ("contacts", ["hubspot_dup", "hubspot_auth"]),
        ("globex", ["hubspot_dup", "hubspot_auth"]),  # the tenant's name
        ("Acme Corp", ["pax8_missing", "pax8_auth"]),
        ("AUTH_EXPIRED", ["pax8_auth"]),  # a code, whole
        ("auth_", ["pax8_auth", "hubspot_auth"]),  # a code from its start, any case
        ("item_duplicate", ["hubspot_dup"]),
        ("globex auth", ["hubspot_auth"]),  # every term somewhere
        ("EXPIRED", []),  # codes from their start only
    ],
)
def test_the_issue_list_searches_integrations_tenants_and_codes(searchable, support_client, term, expected):
    response = support_client.get(reverse("admin:issues_syncissue_changelist"), {"q": term})

    assert response.status_code == 200
    listed = sorted(issue.pk for issue in response.context["cl"].result_list)
    assert listed == sorted(searchable[name].pk for name in expected)
