"""A help request answered in a real browser: Chromium (1280x800) driven by Playwright against the live server.

A Support agent finds the customer's request on the dashboard, reads it
(with an internal note written earlier) and replies; the customer reads the
reply on the integration's General tab, signed "SyncConsole support" and
without the note, and answers; the agent's page shows the answer and the
request back in progress. Screenshots: test-artifacts/help-request-*.png
(help-request-failure.png holds the page of a step that failed).
"""

import pytest
from django.core import mail

from integrations.models import Membership
from issues.models import SupportMessage, SupportRequest
from issues.support import conversation
from tests.factories import IntegrationFactory, TenantFactory, UserFactory
from tests.issues.conftest import PASSWORD
from tests.plugins.chromium import (
    expect,
    launch_chromium,
    log_in_to_console,
    log_in_to_portal,
    new_page,
    screenshot,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPLY = "Your vendor key expired on Monday. Could you re-authenticate from the General tab?"
NOTE = "Their IT rotated the key; do not mention the other tenant."
ANSWER = "Done: the new key is saved and the sync ran."


def test_a_reply_written_in_the_console_reaches_the_portal_and_the_answer_comes_back(
    live_server, settings, member, staff_groups, error_catalog
):
    settings.SITE_URL = live_server.url
    settings.SUPPORT_EMAIL = "help@syncconsole.example"
    tenant = TenantFactory(name="Acme", slug="acme")
    grace = member(tenant, Membership.Role.ADMIN, username="grace", email="grace@acme.example", first_name="Grace")
    integration = IntegrationFactory(tenant=tenant, name="Pax8 billing")
    agent = UserFactory(username="sam", first_name="Sam", is_staff=True)
    agent.groups.add(staff_groups["Support"])
    request = conversation.open_request(integration, grace, "Invoices stopped arriving on Monday.")
    conversation.add_note(request.pk, author=agent, body=NOTE)
    mail.outbox.clear()

    # The database is read before and after this block (see tests/plugins/chromium.py).
    with launch_chromium() as browser:
        drive(browser, live_server.url, request_id=request.pk, integration_id=integration.pk)

    request.refresh_from_db()
    assert (request.state, request.assignee) == (SupportRequest.State.IN_PROGRESS, agent)
    reply, answer = SupportMessage.objects.filter(kind="reply").order_by("pk")
    assert (reply.body, reply.from_support, reply.author) == (REPLY, True, agent)
    assert (answer.body, answer.from_support, answer.author) == (ANSWER, False, grace)
    to_grace = [m for m in mail.outbox if m.to == ["grace@acme.example"]]
    assert len(to_grace) == 1 and to_grace[0].reply_to == ["help@syncconsole.example"]
    assert f"{live_server.url}/portal/integrations/{integration.pk}/help-requests/{request.pk}/" in to_grace[0].body
    to_support = [m for m in mail.outbox if "help@syncconsole.example" in m.to]
    assert len(to_support) == 1 and to_support[0].reply_to == ["grace@acme.example"]
    assert NOTE not in "".join(m.body for m in mail.outbox)


def drive(browser, base_url, *, request_id, integration_id):
    csp_violations = []
    console = page = new_page(browser, csp_violations)
    try:
        log_in_to_console(console, base_url, "sam", PASSWORD)
        panel = console.locator("#sc-requests")
        expect(panel).to_contain_text("nobody")
        panel.get_by_role("link", name=f"Request {request_id}").click()
        thread = console.locator("#sc-thread")
        expect(thread).to_contain_text("Invoices stopped arriving on Monday.")
        expect(thread).to_contain_text(NOTE)
        expect(thread).to_contain_text("internal note, never shown to the customer")
        console.fill("#id_body", REPLY)
        expect(console.locator("#id_then_state")).to_have_value("waiting_on_customer")
        console.locator("#sc-reply").get_by_role("button", name="Save").click()
        expect(console.locator("ul.messagelist")).to_contain_text("Reply saved and emailed to grace@acme.example.")
        expect(console.locator("#sc-request-state")).to_have_text("Waiting on customer")
        expect(console.locator("#sc-request-assignee")).to_have_text("Sam")
        screenshot(console, "help-request-console-replied.png")

        portal = page = new_page(browser, csp_violations)
        log_in_to_portal(portal, base_url, "grace", PASSWORD)
        portal.goto(f"{base_url}/portal/integrations/{integration_id}/")
        box = portal.locator("#support-requests")
        expect(box).to_contain_text("Support answered")
        expect(box).to_contain_text("SyncConsole support · ")
        expect(box).to_contain_text(REPLY)
        expect(box).not_to_contain_text(NOTE)
        expect(box).not_to_contain_text("Sam")
        portal.fill(f"#answer-{request_id}", ANSWER)
        box.get_by_role("button", name="Send answer").click()
        expect(portal.locator(".messages")).to_contain_text("Your answer was sent to our support team.")
        expect(portal.locator(f"#request-{request_id}")).to_contain_text(ANSWER)
        expect(portal.locator(f"#request-{request_id}")).to_contain_text("Support is on it")
        screenshot(portal, "help-request-portal-answered.png")

        page = console
        console.reload()
        expect(console.locator("#sc-thread")).to_contain_text(ANSWER)
        expect(console.locator("#sc-thread")).to_contain_text("Grace (customer)")
        expect(console.locator("#sc-request-state")).to_have_text("In progress")
        screenshot(console, "help-request-console-answered.png")
    except Exception:
        screenshot(page, "help-request-failure.png")
        raise
    # Both sides work under the Content-Security-Policy: no inline script refused.
    assert csp_violations == []
