"""View as customer in a real browser: Chromium driven by Playwright against the live server.

A Support agent opens a failing integration in the console, follows "View as
customer", reads the General tab under the read-only banner, finds every
button and field switched off, moves to the Issues tab and back to the
console. The browser sends no POST on the way, and the console's timeline
shows both views. Screenshots: test-artifacts/view-as-customer-general.png
and -issues.png (view-as-customer-failure.png when a step fails).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Integration, IntegrationEvent, Membership, SyncSession
from tests.admin.conftest import staff_groups  # noqa: F401
from tests.factories import SyncIssueFactory, SyncSessionFactory, TenantFactory, UserFactory
from tests.plugins.chromium import expect, launch_chromium, log_in_to_console, new_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_support_views_the_tabs_as_the_customer_and_can_change_nothing(
    live_server, staff_groups, member, integration_in  # noqa: F811
):
    tenant = TenantFactory(name="Acme", slug="acme")
    member(tenant, Membership.Role.ADMIN, username="alice")
    integration = integration_in(tenant, Integration.Status.FAILING, name="Acme billing")
    now = timezone.now()
    last = SyncSessionFactory(
        integration=integration,
        state=SyncSession.State.FAILED,
        error_code_id="VENDOR_UNAVAILABLE",
        error_message="The vendor answered 503 three times.",
        started_at=now - timedelta(minutes=6),
        finished_at=now - timedelta(minutes=5),
    )
    Integration.objects.filter(pk=integration.pk).update(last_session=last)
    SyncIssueFactory(integration=integration, item_label="Invoice 7", message="Missing due date")
    agent = UserFactory(username="sam", is_staff=True)
    agent.groups.add(staff_groups["Support"])
    before = Integration.objects.filter(pk=integration.pk).values().get()

    with launch_chromium() as browser:
        posts = drive(browser, live_server.url, integration.pk)

    assert posts == ["/admin/login/"]  # signing in to the console, nothing else
    assert Integration.objects.filter(pk=integration.pk).values().get() == before
    views = IntegrationEvent.objects.filter(integration=integration, kind=IntegrationEvent.Kind.VIEWED_AS_CUSTOMER)
    assert sorted(views.values_list("note", flat=True)) == [
        "Viewed the General tab as a tenant admin sees it (read-only).",
        "Viewed the Issues tab as a tenant admin sees it (read-only).",
    ]


def drive(browser, base_url, integration_id):
    """The agent's browser; the paths of the POSTs it sent."""
    csp_violations = []
    page = new_page(browser, csp_violations)
    posts = []

    def keep_post(request):
        if request.method == "POST":
            posts.append(request.url.removeprefix(base_url))

    page.context.on("request", keep_post)
    try:
        log_in_to_console(page, base_url, "sam")
        page.goto(f"{base_url}/admin/integrations/integration/{integration_id}/change/")

        page.get_by_role("link", name="View as customer").click()
        expect(page.locator("#viewing-as-customer")).to_contain_text("Viewing as the customer sees it — read-only")
        expect(page.locator("main")).to_contain_text("The vendor answered 503 three times.")
        for name in ("Sync now", "Full sync", "Pause syncs", "Save interval"):
            expect(page.get_by_role("button", name=name)).to_be_disabled()
        expect(page.locator("#sync-minutes")).to_be_disabled()
        # A disabled button does nothing when clicked; a forced click submits nothing either.
        page.get_by_role("button", name="Pause syncs").click(force=True)
        page.locator("#sync-minutes").press("Enter")
        expect(page.locator("#viewing-as-customer")).to_be_visible()
        screenshot(page, "view-as-customer-general.png")

        page.locator("nav.tabs").get_by_role("link", name="Issues").click()
        expect(page).to_have_url(f"{base_url}/admin/integrations/integration/{integration_id}/as-customer/issues/")
        expect(page.locator("table.issues")).to_contain_text("Invoice 7")
        expect(page.get_by_role("button", name="Filter")).to_be_disabled()
        screenshot(page, "view-as-customer-issues.png")

        page.get_by_role("link", name="Back to the integration page").click()
        expect(page.locator("#sc-timeline")).to_contain_text("Viewed as the customer sees it")
    except Exception:
        screenshot(page, "view-as-customer-failure.png")
        raise
    finally:
        page.context.close()
    # The console and the read-only tabs work under the Content-Security-Policy: no inline script refused.
    assert csp_violations == []
    return posts
