"""The issue page in a real browser: Chromium (1280x800) driven by Playwright against the live server.

A Support agent searches the issue list by error code, exports it, opens the
issue, reads the catalog's advice and the occurrences chart, resolves the
issue with a note and reopens it. The page never scrolls sideways.
Screenshots: test-artifacts/issue-page*.png (issue-page-failure.png holds the
page of a step that failed).
"""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditRecord
from integrations.models import SyncSession
from issues.models import ErrorCode, SyncIssue
from tests.factories import IntegrationFactory, SyncIssueFactory, SyncSessionFactory, TenantFactory, UserFactory
from tests.issues.conftest import PASSWORD
from tests.plugins.chromium import browse, expect, log_in_to_console, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_support_finds_reads_resolves_and_reopens_an_issue(live_server, settings, staff_groups, error_catalog):
    settings.SITE_URL = live_server.url
    integration = IntegrationFactory(tenant=TenantFactory(name="Acme", slug="acme"), name="Pax8 billing")
    now = timezone.now()
    sessions = [
        SyncSessionFactory(
            integration=integration,
            state=SyncSession.State.FAILED if n % 3 else SyncSession.State.WARNINGS,
            error_code_id="VENDOR_TIMEOUT" if n % 3 else None,
            queued_at=now - timedelta(hours=2 * n + 1),
            started_at=now - timedelta(hours=2 * n + 1),
            finished_at=now - timedelta(hours=2 * n + 1) + timedelta(seconds=40),
            items_warnings=0 if n % 3 else 2,
        )
        for n in range(12)
    ]
    issue = SyncIssueFactory(
        integration=integration,
        external_id="inv-1042",
        item_label="Invoice 1042",
        message="Required field customer is missing",
        vendor_url="https://vendor.example/invoices/1042",
        first_session=sessions[-1],
        last_session=sessions[0],
        occurrences=5,
        first_seen_at=sessions[-1].finished_at,
        last_seen_at=sessions[0].finished_at,
    )
    agent = UserFactory(username="sam", first_name="Sam", is_staff=True)
    agent.groups.add(staff_groups["Support"])
    advice = ErrorCode.objects.get(pk="ITEM_MISSING_FIELD").customer_advice

    found = {}

    def steps(page):
        found["exported"] = drive(page, live_server.url, advice=advice)

    browse(steps, failure_shot="issue-page-failure.png", accept_downloads=True)
    exported = found["exported"]

    issue.refresh_from_db()
    assert issue.state == SyncIssue.State.OPEN
    assert [r.changes["state"] for r in AuditRecord.objects.filter(target__startswith=f"Issue {issue.pk}:").order_by("pk")] == [
        ["open", "resolved"],
        ["resolved", "open"],
    ]
    header, *rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert header[:3] == ["Tenant", "Integration", "Code"]
    assert [row[:3] for row in rows] == [["Acme", "Pax8 billing", "ITEM_MISSING_FIELD"]]


def drive(page, base_url, *, advice):
    """The agent's part; the CSV the export button downloaded, as bytes."""

    def no_sideways_scroll():
        width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], width

    log_in_to_console(page, base_url, "sam", PASSWORD)

    page.goto(f"{base_url}/admin/issues/syncissue/")
    page.fill("#searchbar", "item_missing")
    page.keyboard.press("Enter")
    expect(page.locator("#result_list")).to_contain_text("Invoice 1042")
    with page.expect_download() as download_info:
        page.click("#sc-export-issues")
    download = download_info.value
    assert download.suggested_filename.startswith("issues-") and download.suggested_filename.endswith(".csv")
    exported = Path(download.path()).read_bytes()

    page.locator("#result_list tbody").get_by_role("link").first.click()
    expect(page.locator("#sc-issue-advice")).to_contain_text(advice)
    expect(page.locator("#sc-issue-records a#sc-issue-vendor-link")).to_have_attribute(
        "href", "https://vendor.example/invoices/1042"
    )
    expect(page.locator("#sc-issue-occurrences")).to_contain_text("Seen in 5 syncs between")
    expect(page.locator("svg.sc-occurrences circle.sc-occurrence")).to_have_count(12)
    no_sideways_scroll()
    screenshot(page, "issue-page.png")

    page.fill("#id_note", "The customer filled the field in")
    page.click("#sc-issue-resolve")
    expect(page.locator("ul.messagelist")).to_contain_text("The issue is resolved now.")
    expect(page.locator("#sc-issue-state h2")).to_contain_text("Resolved")
    expect(page.locator("#sc-issue-state")).to_contain_text("The customer filled the field in")

    page.fill("#id_note", "It came back at the next sync")
    page.click("#sc-issue-reopen")
    expect(page.locator("ul.messagelist")).to_contain_text("The issue is open now.")
    expect(page.locator("#sc-issue-resolve")).to_be_visible()
    no_sideways_scroll()
    screenshot(page, "issue-page-reopened.png")
    return exported
