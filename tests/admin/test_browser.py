"""One support case in a real browser: Chromium driven by Playwright against the live server.

A Support user opens a failing integration, reads the last session's error
and advice, sends a re-authentication link; the customer opens the link in a
fresh browser context (no cookies) and saves the simulator's new key; the
console then shows the re-authentication's full sync and the new status.
"""

import pytest

from integrations.models import Integration, ReauthLink, SyncSession
from issues.models import ErrorCode
from tests.factories import MembershipFactory, UserFactory
from tests.plugins.chromium import expect, launch_chromium, log_in_to_console, new_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_support_sends_a_link_and_the_customer_reauthenticates(
    live_server, settings, staff_groups, make_integration, sync
):
    # Links in the console and in emails point at this server.
    settings.SITE_URL = live_server.url
    integration = make_integration("expired-token", name="Pax8 billing")
    failed = sync(integration)
    assert integration.status == Integration.Status.AUTH_FAILING
    advice = ErrorCode.objects.get(code="AUTH_EXPIRED").customer_advice
    member = MembershipFactory(
        tenant=integration.tenant,
        user=UserFactory(username="grace", email="grace@customer.example"),
        role="admin",
    )
    agent = UserFactory(username="sam", is_staff=True)
    agent.groups.add(staff_groups["Support"])
    change_url = f"{live_server.url}/admin/integrations/integration/{integration.pk}/change/"

    # The database is only read before and after this block (see tests/plugins/chromium.py).
    with launch_chromium() as browser:
        drive(browser, live_server.url, change_url, advice=advice, member_email=member.user.email)

    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    assert integration.get_credentials() == {"api_key": "new-key"}
    session = SyncSession.objects.filter(integration=integration).exclude(pk=failed.pk).get()
    assert (session.kind, session.trigger, session.state) == ("full", "reauth", "succeeded")
    assert ReauthLink.objects.get(integration=integration).used_at is not None


def drive(browser, base_url, change_url, *, advice, member_email):
    """The browser part: the agent's context, then the customer's, then the agent's again.

    The integration page ends up in test-artifacts/admin-integration.png
    (admin-failure.png holds the agent's page when a step fails).
    """
    csp_violations = []
    page = new_page(browser, csp_violations)
    try:
        log_in_to_console(page, base_url, "sam")

        page.goto(change_url)
        last_session = page.locator("#sc-last-session")
        expect(last_session).to_contain_text("AUTH_EXPIRED")
        expect(last_session).to_contain_text("Credentials expired")
        expect(last_session.get_by_text(advice)).to_be_hidden()
        last_session.locator("summary", has_text="Show details").click()
        expect(last_session.get_by_text(advice)).to_be_visible()
        expect(page.locator("#sc-why")).to_contain_text("until “Credentials invalid” (syncs paused) if authentication keeps failing")

        # It asks for a recipient, so it is a link to the action's page, not a POST.
        page.get_by_role("link", name="Send re-authentication link").click(timeout=5_000)
        expect(page.locator("#id_member")).to_be_visible()
        page.select_option("#id_member", member_email)
        page.click("input[type=submit][value='Send re-authentication link']")
        expect(page.locator("#content-main")).to_contain_text("grace@customer.example")
        url = page.input_value("#sc-reauth-url")
        assert url.startswith(f"{base_url}/reauth/")

        form = new_page(browser, csp_violations, timeout=30_000)  # a context of its own: not logged in
        assert form.context.cookies() == []
        form.goto(url)
        expect(form.locator("h1")).to_have_text("Re-authenticate Pax8 billing")
        form.fill("#id_api_key", "new-key")
        form.get_by_role("button", name="Check and save").click()
        expect(form.locator("h1")).to_have_text("Thank you: the new credentials work")
        form.context.close()

        page.goto(change_url)
        last_session = page.locator("#sc-last-session")
        expect(last_session).to_contain_text("Re-authentication")
        expect(last_session).to_contain_text("Full")
        expect(last_session).not_to_contain_text("AUTH_EXPIRED")
        expect(page.locator("#sc-console .sc-badge").first).to_have_text("Active")
        expect(page.locator("#sc-credentials")).to_contain_text("completed")
        expect(page.locator("#sc-timeline")).to_contain_text("Re-authentication link used")
    except Exception:
        screenshot(page, "admin-failure.png")
        raise
    screenshot(page, "admin-integration.png")
    page.context.close()
    # The console and the public page work under the Content-Security-Policy: no inline script refused.
    assert csp_violations == []
