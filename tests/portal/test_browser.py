"""The customer's portal in a real browser: Chromium driven by Playwright against the live server.

A. A tenant admin logs in, opens the integration whose credentials expired,
   reads the error and the advice on the General tab, filters the Issues tab
   by code, opens "Our record" of an item with a problem, asks for help and
   sees the request listed as Open.
B. A sync started while the General tab is open shows its progress moving,
   then the page reloads itself to the finished state.

Screenshots go to test-artifacts/portal-*.png (portal-failure.png holds the
page when a step fails).
"""

import re
import time

import pytest
from django.core import mail

from integrations.models import Integration, Membership, SyncSession
from integrations.sync import runner
from integrations.sync.starting import start_sync
from issues.models import ErrorCode, SupportRequest, SyncIssue
from tests.factories import TenantFactory
from tests.plugins.chromium import browse, expect, log_in_to_portal, screenshot
from tests.session_thread import SessionThread

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
Status = Integration.Status
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture
def customer(member):
    tenant = TenantFactory(name="Acme")
    user = member(
        tenant, Membership.Role.ADMIN, username="grace", email="grace@acme.example", first_name="Grace"
    )
    return tenant, user


def test_a_customer_reads_the_error_filters_issues_and_asks_for_help(
    live_server, settings, customer, make_integration, sync
):
    settings.SITE_URL = live_server.url
    settings.SUPPORT_EMAIL = "help@syncconsole.example"
    tenant, user = customer
    failing = make_integration("expired-token", tenant=tenant, name="Pax8 billing")
    failed = sync(failing)
    assert failing.status == Status.AUTH_FAILING
    contacts = make_integration("warnings", tenant=tenant, name="Address book")
    sync(contacts)
    auth_expired = ErrorCode.objects.get(code="AUTH_EXPIRED")
    invalid = SyncIssue.objects.get(integration=contacts, external_id="item-0000019")
    assert invalid.error_code_id == "ITEM_INVALID_VALUE" and invalid.record_id

    def steps(page):
        log_in_to_portal(page, live_server.url, "grace")
        cards = page.locator("article.integration")
        expect(cards).to_have_count(2)
        expect(cards.filter(has_text="Pax8 billing").locator(".badge")).to_have_text(
            "Sign-in to the vendor failing"
        )

        # The General tab: what is wrong, what to do, what happens next.
        page.get_by_role("link", name="Pax8 billing").click()
        expect(page.locator("h1")).to_contain_text("Pax8 billing")
        expect(page.locator("#status .badge")).to_have_text("Sign-in to the vendor failing")
        expect(page.locator("#status")).to_contain_text("Re-authenticate to resume syncing.")
        expect(page.locator("#status")).to_contain_text("What happens next:")
        last_error = page.locator("#last-error")
        expect(last_error).to_contain_text(auth_expired.title)
        expect(last_error).to_contain_text(auth_expired.customer_advice)
        expect(last_error.get_by_text(failed.error_message)).to_be_hidden()
        last_error.locator("summary", has_text="Show details").click()
        expect(last_error.get_by_text(failed.error_message)).to_be_visible()
        expect(page.get_by_role("link", name="Re-authenticate")).to_be_visible()
        screenshot(page, "portal-general.png")

        # Its Issues tab, filtered by code.
        page.locator("nav.tabs").get_by_role("link", name="Issues").click()
        page.select_option("select[name=code]", "AUTH_EXPIRED")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"code=AUTH_EXPIRED"))
        rows = page.locator("table.issues tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(auth_expired.title)
        page.select_option("select[name=code]", "ITEM_DUPLICATE")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_text(["No issues match."])

        # The address book's item problems: filter, open our record, ask for help.
        page.get_by_role("link", name="Integrations").click()
        page.get_by_role("link", name="Address book").click()
        expect(page.locator("#status .badge")).to_have_text("Under review by our team")
        page.locator("nav.tabs").get_by_role("link", name="Issues").click()
        expect(rows).to_have_count(5)
        page.select_option("select[name=code]", "ITEM_INVALID_VALUE")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"code=ITEM_INVALID_VALUE"))
        expect(rows).to_have_count(2)
        for n in range(2):
            expect(rows.nth(n)).to_contain_text("ITEM_INVALID_VALUE")
        expect(page.locator("select[name=code]")).to_have_value("ITEM_INVALID_VALUE")
        screenshot(page, "portal-issues.png")

        row = rows.filter(has_text="Tara Jensen")
        row.get_by_role("link", name="Our record").click()
        record = page.locator("#record")
        expect(record).to_contain_text("item-0000019")
        expect(record).to_contain_text("not-an-email")
        screenshot(page, "portal-record.png")
        page.go_back()

        row.get_by_role("link", name="Help me resolve this issue").click()
        expect(page.locator("main h2").first).to_contain_text("ITEM_INVALID_VALUE")
        page.fill("#id_message", "Tara's address is right in our CRM. Why is it refused?")
        page.get_by_role("button", name="Send to support").click()
        expect(page.locator(".messages")).to_contain_text("Your request was sent to our support team.")
        requests = page.locator("#requests")
        expect(requests).to_contain_text("Sent to support")
        expect(requests).to_contain_text("Tara's address is right in our CRM.")
        screenshot(page, "portal-help.png")

        page.locator("nav.tabs").get_by_role("link", name="Issues").click()
        expect(rows.filter(has_text="Tara Jensen")).to_contain_text("Help: Sent to support")

    browse(steps, failure_shot="portal-failure.png", viewport=VIEWPORT)

    request = SupportRequest.objects.get()
    assert (request.issue_id, request.user, request.state) == (invalid.pk, user, SupportRequest.State.NEW)
    assert request.message == "Tara's address is right in our CRM. Why is it refused?"
    to_support = [m for m in mail.outbox if m.to == ["help@syncconsole.example"]]
    assert len(to_support) == 1
    assert "Tara's address is right in our CRM." in to_support[0].body


PAGE_DELAY = 0.12  # seconds before each page is written; see the test's docstring


def test_a_running_sync_shows_its_progress_until_it_finishes(
    live_server, customer, make_integration, monkeypatch
):
    """The engine writes a 100-item page in a few milliseconds here, faster than the page polls
    (every 1.5 s); each page waits PAGE_DELAY before it is written so that the count moves visibly."""
    tenant, _ = customer
    integration = make_integration("big-4000", tenant=tenant, name="Warehouse stock", page_size=100)
    assert integration.status == Status.SETUP and integration.mapping_complete
    original_write = runner.SessionRun.write

    def paced_write(self, page, **kwargs):
        time.sleep(PAGE_DELAY)
        return original_write(self, page, **kwargs)

    monkeypatch.setattr(runner.SessionRun, "write", paced_write)
    # Queued, not run: a thread runs it while the page watches (see tests/session_thread.py).
    session = start_sync(
        integration, kind=SyncSession.Kind.FULL, trigger=SyncSession.Trigger.CUSTOMER, enqueue=False
    )
    thread = SessionThread(session.pk)
    seen = []

    def steps(page):
        log_in_to_portal(page, live_server.url, "grace")
        page.get_by_role("link", name="Warehouse stock").click()
        progress = page.locator("#sync-progress")
        expect(progress).to_be_visible()
        expect(progress).to_have_text("Syncing: 0 items")
        expect(page.locator("#status .badge")).to_have_text("Setting up")
        thread.start()

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = progress.text_content() if progress.is_visible() else ""
            match = re.fullmatch(r"Syncing: (\d+)(?: of (\d+))? items", text or "")
            if match and (not seen or seen[-1] != int(match.group(1))):
                seen.append(int(match.group(1)))
                if len(seen) == 3:
                    screenshot(page, "portal-progress.png")
            if page.locator("#status .badge").text_content() != "Setting up":
                break  # reloaded to the finished state
            page.wait_for_timeout(100)

        # The page reloaded itself: finished, no progress line, the session's numbers.
        expect(page.locator("#status .badge")).to_have_text("Syncing normally", timeout=30_000)
        expect(progress).to_be_hidden()
        expect(page.locator("#last-session")).to_contain_text("Succeeded")
        expect(page.locator("#last-session")).to_contain_text("4000 read")
        screenshot(page, "portal-finished.png")

    try:
        browse(steps, failure_shot="portal-failure.png", viewport=VIEWPORT)
    finally:
        thread.join_if_started()
    assert thread.error is None, thread.error
    assert not thread.is_alive()
    # The number moved while the page was open: at least two counts between the first and the last.
    assert len([n for n in seen if 0 < n < 4000]) >= 2, seen
    assert seen == sorted(seen), seen
    session.refresh_from_db()
    assert (session.state, session.items_seen, session.items_total) == ("succeeded", 4000, 4000)
    integration.refresh_from_db()
    assert integration.status == Status.ACTIVE
