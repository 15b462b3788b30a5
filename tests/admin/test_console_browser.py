"""The console at 1280 x 800 in a real browser: Chromium driven by Playwright against the live server.

A. Every changelist support works in (integrations, issues, sessions, help
   requests, alerts), filled with long real-world names, fits the screen: the
   page does not scroll sideways and neither does the changelist's table. The
   dashboard uses the whole width, its status tiles sit in one row, and its
   three charts are drawn (an SVG with bars).
B. A slow sync (the vendor simulator answers each page after a pause) runs
   while the integration page is open: the progress bar and its counts move,
   and when the session ends the status badge changes, without a reload.
   On SQLite the session is run by a worker thread of this process; on
   PostgreSQL "Sync now" is clicked and a real `qcluster` process runs it.

Screenshots are kept in test-artifacts/ (ignored by git): console-<page>.png
for each page of A, console-progress-running.png and console-progress-ended.png
for B, console-failure.png for the page where a step failed.
"""

import re
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import Alert
from integrations.models import Integration, SyncSession
from integrations.sync.starting import start_sync
from issues.models import SupportRequest, SyncIssue
from tests.factories import (
    IntegrationFactory,
    SyncIssueFactory,
    SyncSessionFactory,
    TenantFactory,
    UserFactory,
)
from tests.plugins.chromium import browse, expect, log_in_to_console, screenshot
from tests.plugins.simulator import SimulatorProcess
from tests.session_thread import SessionThread

pytest_plugins = ["tests.plugins.qcluster"]

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
Status = Integration.Status
State = SyncSession.State

LONG_TENANTS = [
    "Northwind Traders International Holdings GmbH & Co. KG",
    "Contoso Managed Services and Cloud Operations (EMEA)",
    "Fabrikam Residences Property Management Cooperative",
]
LONG_INTEGRATIONS = [
    "Pax8 billing: subscriptions, licence counts and seat changes for every managed customer",
    "ConnectWise Manage PSA: companies, contacts, agreements and configuration items",
    "Microsoft 365 shared mailboxes of the helpdesk, the accounts team and the front office",
    "Proofpoint Essentials users and their quarantine digests (all domains)",
]
LONG_MESSAGE = (
    "Required field \"primary_contact_email_address\" is missing on the company record imported from the "
    "vendor's legacy tenant, so the company could not be created in the platform"
)


def console_with_long_names():
    """Integrations in several statuses with long names, and every list support reads filled for them."""
    now = timezone.now()
    staff = UserFactory(username="sam", is_staff=True, is_superuser=True)
    customer = UserFactory(username="grace", email="grace.hopper-with-a-long-address@northwind-traders.example")
    statuses = [Status.FAILING, Status.AUTH_FAILING, Status.WARNINGS, Status.ACTIVE, Status.QUALITY_ASSURANCE]
    for t, tenant_name in enumerate(LONG_TENANTS):
        tenant = TenantFactory(name=tenant_name, slug=f"long-{t}")
        for n, name in enumerate(LONG_INTEGRATIONS):
            status = statuses[(t + n) % len(statuses)]
            integration = IntegrationFactory(
                tenant=tenant,
                name=name,
                connector="simulator",
                status=status,
                status_changed_at=now - timedelta(hours=t + n),
                consecutive_unsuccessful=(t + n) % 12,
                last_success_at=now - timedelta(days=n, hours=t),
                open_issue_count=1200 + n,
            )
            finished = SyncSessionFactory(
                integration=integration,
                state=State.FAILED if status == Status.FAILING else State.WARNINGS,
                error_code_id="VENDOR_UNAVAILABLE" if status == Status.FAILING else None,
                queued_at=now - timedelta(minutes=40 + n),
                started_at=now - timedelta(minutes=39 + n),
                finished_at=now - timedelta(minutes=20 + n),
                items_seen=123_456,
                items_failed=1_234,
                items_warnings=56,
            )
            Integration.objects.filter(pk=integration.pk).update(last_session=finished)
            if n == 0:
                SyncSessionFactory(
                    integration=integration,
                    state=State.RUNNING,
                    trigger=SyncSession.Trigger.STAFF,
                    queued_at=now - timedelta(minutes=2),
                    started_at=now - timedelta(minutes=1),
                    items_seen=45_678,
                    items_total=1_234_567,
                )
            issue = SyncIssueFactory(
                integration=integration,
                external_id=f"company-{t}{n}-0000000000000000000000000000000000000000",
                item_label="Northwind Traders International Holdings GmbH & Co. KG (head office, Hamburg)",
                message=LONG_MESSAGE,
                occurrences=12_345,
            )
            SupportRequest.objects.create(
                integration=integration,
                issue=issue,
                user=customer,
                message="Our accountant cannot see the new seats since Tuesday; the subscription shows as "
                "active in Pax8 but the licence count in your platform is still the old one. " * 3,
                assignee=staff if n % 2 else None,
            )
            Alert.objects.create(
                integration=integration,
                tenant=tenant,
                rule=Alert.Rule.REPEATED_FAILURES,
                streak=f"streak-{t}-{n}",
                state=Alert.State.SENT,
                recipients=["operations-and-billing-alerts@northwind-traders.example"],
                subject="Syncs keep failing",
                created_at=now - timedelta(minutes=n + 1),
                sent_at=now - timedelta(minutes=n),
            )
    assert SyncIssue.objects.count() == len(LONG_TENANTS) * len(LONG_INTEGRATIONS)
    return staff


CHANGELISTS = {
    "integrations": "/admin/integrations/integration/",
    "issues": "/admin/issues/syncissue/",
    "sessions": "/admin/integrations/syncsession/",
    "requests": "/admin/issues/supportrequest/",
    "alerts": "/admin/alerts/alert/",
}


SIDEWAYS = """() => {
    const doc = document.scrollingElement;
    const results = document.querySelector('#changelist-form .results');
    return {
        page: [doc.scrollWidth, doc.clientWidth],
        table: results ? [results.scrollWidth, results.clientWidth] : null,
        rows: document.querySelectorAll('#result_list tbody tr').length,
    };
}"""


def test_changelists_fit_1280_and_the_dashboard_draws_its_charts(live_server, staff_groups, error_catalog):
    console_with_long_names()
    widths = {}

    def steps(page):
        log_in_to_console(page, live_server.url, "sam")
        for name, path in CHANGELISTS.items():
            page.goto(f"{live_server.url}{path}")
            expect(page.locator("#result_list")).to_be_visible()
            screenshot(page, f"console-{name}.png")
            widths[name] = page.evaluate(SIDEWAYS)
        # A long name is cut to its column, whole in its title.
        page.goto(f"{live_server.url}{CHANGELISTS['integrations']}")
        cell = page.locator("#result_list .sc-cell", has_text=LONG_INTEGRATIONS[0][:30]).first
        assert LONG_INTEGRATIONS[0] in cell.get_attribute("title")
        assert cell.evaluate("e => e.scrollWidth > e.clientWidth")  # cut with an ellipsis

        page.goto(f"{live_server.url}/admin/")
        dashboard = page.locator("#sc-dashboard")
        expect(dashboard).to_be_visible()
        widths["dashboard"] = page.evaluate(SIDEWAYS)
        widths["dashboard_width"] = dashboard.bounding_box()["width"]
        tiles = page.locator("#sc-tiles .sc-tile")
        widths["tile_tops"] = {round(tiles.nth(i).bounding_box()["y"]) for i in range(tiles.count())}
        widths["tiles"] = tiles.count()
        for key in ("day", "week", "failing"):
            chart = page.locator(f"#sc-chart-{key} svg")
            expect(chart).to_be_visible()
            widths[f"bars_{key}"] = page.locator(f"#sc-chart-{key} svg rect.sc-bar").count()
        screenshot(page, "console-dashboard.png")

    browse(steps, failure_shot="console-failure.png")

    for name in CHANGELISTS:
        measured = widths[name]
        assert measured["rows"] >= len(LONG_INTEGRATIONS), (name, measured)
        page_width, page_client = measured["page"]
        table_width, table_client = measured["table"]
        assert page_width <= page_client, f"the {name} page scrolls sideways: {measured}"
        assert table_width <= table_client, f"the {name} changelist's table scrolls sideways: {measured}"
    assert widths["dashboard"]["page"][0] <= widths["dashboard"]["page"][1]
    assert widths["dashboard_width"] > 1100  # the whole width, not the left half
    assert widths["tiles"] == len(Status.values) and len(widths["tile_tops"]) == 1  # one row
    assert widths["bars_day"] >= 1 and widths["bars_week"] >= 1 and widths["bars_failing"] >= 1


# -- B. a slow sync, watched ---------------------------------------------------------------------

SLOW_PAGE_SECONDS = 0.4  # the simulator's pause before each page of /items (12 pages of 10)
PROGRESS = re.compile(r"Session \d+ is running · ([\d,]+) of 120 items · (\d+) pages? · ")


@pytest.fixture
def slow_vendor():
    with SimulatorProcess(slow_seconds=SLOW_PAGE_SECONDS) as process:
        yield process


def watch_the_sync(page, base_url, integration_id, start):
    """Open the integration page, `start(page)` the sync, and record what the live panel shows until it ends."""
    log_in_to_console(page, base_url, "sam")
    page.goto(f"{base_url}/admin/integrations/integration/{integration_id}/change/")
    expect(page.locator("#sc-status-badge")).to_have_text("Setup")
    start(page)
    expect(page.locator("#sc-live")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    seen, bar_values = [], []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = page.locator("#sc-progress-text").text_content() or ""
        match = PROGRESS.match(text)
        if match:
            items = int(match.group(1).replace(",", ""))
            if not seen or seen[-1] != items:
                seen.append(items)
                bar_values.append(page.locator("#sc-progress-bar").evaluate("bar => bar.value"))
                if len(seen) == 3:
                    screenshot(page, "console-progress-running.png")
        if "ended" in (page.locator("#sc-live-title").text_content() or ""):
            break
        page.wait_for_timeout(150)
    expect(page.locator("#sc-live-title")).to_have_text(re.compile(r"Session \d+ ended: Succeeded"))
    expect(page.locator("#sc-status-badge")).to_have_text("Active")
    expect(page.locator("#sc-progress-text")).to_contain_text("120 of 120 items · 12 pages")
    assert page.evaluate("window.notReloaded") is True  # the same page: no reload happened
    screenshot(page, "console-progress-ended.png")
    return seen, bar_values


def slow_integration(make_integration, slow_vendor):
    integration = make_integration("slow", name="Warehouse stock", base_url=slow_vendor.base_url, page_size=10)
    assert integration.status == Status.SETUP and integration.mapping_complete
    return integration


def check_it_moved(seen, bar_values, integration):
    # The count moved while the page was open: at least two counts between none and all.
    assert len([n for n in seen if 0 < n < 120]) >= 2, seen
    assert seen == sorted(seen), seen
    assert bar_values == sorted(bar_values) and bar_values[0] < bar_values[-1], bar_values
    integration.refresh_from_db()
    assert integration.status == Status.ACTIVE
    session = integration.sessions.get()
    assert (session.state, session.items_seen, session.pages) == (State.SUCCEEDED, 120, 12)


def test_the_progress_bar_moves_and_the_status_changes_without_a_reload(
    live_server, staff_groups, make_integration, slow_vendor
):
    UserFactory(username="sam", is_staff=True, is_superuser=True)
    integration = slow_integration(make_integration, slow_vendor)
    # Queued, not run: a thread runs it while the page watches (see tests/session_thread.py).
    session = start_sync(integration, kind=SyncSession.Kind.QUICK, trigger=SyncSession.Trigger.STAFF, enqueue=False)
    thread = SessionThread(session.pk)
    found = {}

    def steps(page):
        found["seen"], found["bars"] = watch_the_sync(
            page, live_server.url, integration.pk, start=lambda page: thread.start()
        )

    try:
        browse(steps, failure_shot="console-failure.png")
    finally:
        thread.join_if_started()
    assert thread.error is None, thread.error
    check_it_moved(found["seen"], found["bars"], integration)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: a qcluster process shares the database")
def test_sync_now_runs_on_a_real_worker_while_the_page_follows_it(
    live_server, staff_groups, make_integration, slow_vendor, qcluster_factory, monkeypatch
):
    from django_q.conf import Conf

    UserFactory(username="sam", is_staff=True, is_superuser=True)
    integration = slow_integration(make_integration, slow_vendor)
    # This process (the live server's thread) queues to the ORM broker; an urgent qcluster runs people's syncs.
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")
    qcluster_factory(cluster_name="urgent", env={"Q_URGENT_WORKERS": 1, "Q_WORKERS": 1})
    found = {}

    def steps(page):
        found["seen"], found["bars"] = watch_the_sync(
            page, live_server.url, integration.pk, start=lambda page: page.click("#sc-action-sync_now")
        )

    browse(steps, failure_shot="console-failure.png")
    check_it_moved(found["seen"], found["bars"], integration)
