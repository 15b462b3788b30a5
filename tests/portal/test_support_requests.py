"""Help requests in the portal: the conversation on the General tab and under the issue, answering it,
and "contact support" filled in from the integration's timeline.

The customer reads support's replies signed "SyncConsole support" and never
an internal note; any member of the tenant (viewers too) answers; a wrong
answer (empty, on a resolved request, on another tenant's request) says why
with its status and changes nothing.
"""

import re
from html import unescape

import pytest
from django.core import mail
from django.urls import reverse

from integrations import reauth
from integrations.models import Integration, IntegrationEvent, Membership, SyncSession
from integrations.selectors import customer_words
from issues.models import SupportMessage, SupportRequest
from issues.support import conversation
from tests.admin.conftest import staff_groups, support_user  # noqa: F401
from tests.factories import IntegrationFactory, SyncIssueFactory, TenantFactory
from tests.portal.conftest import snapshot

State = SupportRequest.State


def text(response):
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def section(response, element_id):
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', response.content.decode(), re.DOTALL)
    assert match, f"no #{element_id} on the page"
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", match.group(2))))


@pytest.fixture
def acme(member, error_catalog):
    tenant = TenantFactory(name="Acme", slug="acme")
    grace = member(tenant, Membership.Role.ADMIN, username="grace", email="grace@acme.example", first_name="Grace")
    victor = member(tenant, Membership.Role.VIEWER, username="victor", email="victor@acme.example", first_name="Victor")
    integration = IntegrationFactory(tenant=tenant, name="Acme billing")
    issue = SyncIssueFactory(integration=integration, item_label="Invoice 42")
    return tenant, grace, victor, integration, issue


@pytest.fixture
def conversation_so_far(acme, support_user):  # noqa: F811 (the imported fixture)
    """Grace asked; support noted something for itself and replied."""
    _, grace, _, integration, issue = acme
    support_user.first_name = "Sam"
    support_user.save()
    request = conversation.open_request(integration, grace, "Invoice 42 never arrives.", issue=issue)
    conversation.add_note(request.pk, author=support_user, body="Their IT rotated the key last week.")
    conversation.reply(request.pk, author=support_user, body="Could you re-authenticate with the new key?")
    return request


@pytest.mark.django_db
def test_the_general_tab_shows_the_conversation_without_notes(acme, conversation_so_far, log_in):
    _, grace, _, integration, _ = acme
    page = log_in(grace).get(reverse("portal:general", args=[integration.pk]))
    assert page.status_code == 200
    box = section(page, "support-requests")
    assert "Request" in box and "Support answered" in box
    assert "You · " in box and "Invoice 42 never arrives." in box
    assert "SyncConsole support · " in box and "Could you re-authenticate with the new key?" in box
    assert "rotated the key" not in page.content.decode()
    assert "Sam" not in box
    assert f'action="{reverse("portal:support_request", args=[integration.pk, conversation_so_far.pk])}"' in page.content.decode()
    assert reverse("portal:contact_support", args=[integration.pk]) in page.content.decode()


@pytest.mark.django_db
def test_the_issue_shows_support_s_latest_reply_and_its_page_the_thread(acme, conversation_so_far, log_in):
    _, _, victor, integration, issue = acme
    client = log_in(victor)
    issues = text(client.get(reverse("portal:issues", args=[integration.pk])))
    assert "Help: Support answered" in issues
    assert "SyncConsole support: “Could you re-authenticate with the new key?”" in issues
    help_page = client.get(reverse("portal:help", args=[integration.pk, issue.pk]))
    thread = section(help_page, "requests")
    assert "Grace · " in thread  # another member's words, by first name
    assert "Could you re-authenticate with the new key?" in thread
    assert "rotated the key" not in help_page.content.decode()


@pytest.mark.django_db
def test_a_viewer_answers_and_support_hears_of_it(
    acme, conversation_so_far, log_in, support_user, django_capture_on_commit_callbacks  # noqa: F811
):
    _, _, victor, integration, _ = acme
    url = reverse("portal:support_request", args=[integration.pk, conversation_so_far.pk])
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = log_in(victor).post(url, {"body": "Done: new key saved this morning.", "back": "general"})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:general", args=[integration.pk]) + f"#request-{conversation_so_far.pk}"
    conversation_so_far.refresh_from_db()
    assert conversation_so_far.state == State.IN_PROGRESS
    answer = SupportMessage.objects.filter(from_support=False).get()
    assert (answer.author, answer.body) == (victor, "Done: new key saved this morning.")
    (email,) = mail.outbox
    assert email.reply_to == ["victor@acme.example"]
    assert "Done: new key saved this morning." in email.body
    page = log_in(victor).get(url)
    assert "You · " in section(page, "requests") and "Support is on it" in section(page, "requests")


@pytest.mark.django_db
def test_an_empty_answer_is_refused_and_changes_nothing(acme, conversation_so_far, log_in):
    tenant, grace, _, integration, _ = acme
    url = reverse("portal:support_request", args=[integration.pk, conversation_so_far.pk])
    before = snapshot(tenant)
    for body in ("", "   "):
        response = log_in(grace).post(url, {"body": body, "back": "general"})
        assert response.status_code == 400
        assert "Write your answer first." in text(response)
    assert snapshot(tenant) == before


@pytest.mark.django_db
def test_a_resolved_request_takes_no_answer(acme, conversation_so_far, log_in, support_user):  # noqa: F811
    tenant, grace, _, integration, _ = acme
    conversation.update(conversation_so_far.pk, actor=support_user, state=State.RESOLVED)
    url = reverse("portal:support_request", args=[integration.pk, conversation_so_far.pk])
    client = log_in(grace)
    page = client.get(url)
    assert "Resolved. If the problem is back, ask for help again." in text(page)
    assert 'name="body"' not in page.content.decode()
    before = snapshot(tenant)
    response = client.post(url, {"body": "It is back.", "back": "general"})
    assert response.status_code == 409
    assert "it takes no more answers" in text(response)
    assert snapshot(tenant) == before
    general = client.get(reverse("portal:general", args=[integration.pk]))
    assert "Invoice 42 never arrives." not in section(general, "support-requests")  # open ones only


@pytest.mark.django_db
def test_another_tenant_cannot_read_or_answer(acme, conversation_so_far, member, log_in):
    tenant, _, _, integration, _ = acme
    globex = TenantFactory(name="Globex", slug="globex")
    gerda = member(globex, Membership.Role.ADMIN, username="gerda")
    theirs = IntegrationFactory(tenant=globex, name="Globex billing")
    client = log_in(gerda)
    before = snapshot(tenant, globex)
    for integration_id in (integration.pk, theirs.pk):
        url = reverse("portal:support_request", args=[integration_id, conversation_so_far.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"body": "Hello from Globex", "back": "general"}).status_code == 404
    general = client.get(reverse("portal:general", args=[theirs.pk]))
    assert "Invoice 42" not in general.content.decode()
    assert snapshot(tenant, globex) == before


@pytest.mark.django_db
def test_answers_are_limited(acme, conversation_so_far, log_in, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "help_replies": (2, 3600)}
    _, grace, _, integration, _ = acme
    url = reverse("portal:support_request", args=[integration.pk, conversation_so_far.pk])
    client = log_in(grace)
    codes = [client.post(url, {"body": f"Still there ({n})", "back": "request"}).status_code for n in range(3)]
    assert codes == [302, 302, 429]
    assert SupportMessage.objects.filter(from_support=False).count() == 2


# -- contact support, filled in from the timeline ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_contact_support_is_filled_in_from_a_real_timeline(
    member, log_in, make_integration, sync, support_user, settings  # noqa: F811
):
    """A simulator integration syncs cleanly, its key expires at the vendor, the customer forces a sync,
    support sends a re-authentication link: the form says all of it without the customer typing."""
    tenant = TenantFactory(name="Acme", slug="acme-t")
    grace = member(tenant, Membership.Role.ADMIN, username="grace", email="grace@acme.example")
    integration = make_integration("healthy", tenant=tenant, name="Pax8 billing")
    sync(integration)
    assert integration.status == Integration.Status.ACTIVE
    integration.set_credentials({"api_key": "expired-key"}, set_at=integration.credentials_set_at)
    integration.save()
    failed = sync(integration, trigger=SyncSession.Trigger.SCHEDULE)
    assert integration.status == Integration.Status.AUTH_FAILING
    went_wrong = IntegrationEvent.objects.get(integration=integration, kind="status_changed", to_status="auth_failing")

    client = log_in(grace)
    assert client.post(reverse("portal:sync", args=[integration.pk]), {"kind": "full"}).status_code == 302
    forced = SyncSession.objects.filter(integration=integration, trigger="customer").get()
    assert forced.state == SyncSession.State.FAILED
    reauth.create_link(integration, recipient="grace@acme.example", created_by=support_user)

    page = client.get(reverse("portal:contact_support", args=[integration.pk]))
    assert page.status_code == 200
    form = page.context["form"]
    began = f"{went_wrong.created_at:%Y-%m-%d %H:%M} UTC"
    active, failing = customer_words("active")[0], customer_words("auth_failing")[0]
    assert form["began"].value() == f"{began} (the status went from {active} to {failing})"
    assert form["reauthenticated"].value() == "no"
    assert form["forced_sync"].value() == "yes"
    shown = text(page)
    assert "a re-authentication link was sent" in shown and "not used yet" in shown
    assert f"a full sync (customer), failed with AUTH_EXPIRED, asked for {forced.queued_at:%Y-%m-%d %H:%M} UTC" in shown
    assert f"session {failed.pk}, failed with AUTH_EXPIRED" in section(page, "contact-facts")
    assert "complete: 2 vendor accounts, each mapped or ignored" in section(page, "contact-facts")

    # The customer corrects one answer and says what happened; the request keeps every answer.
    mail.outbox.clear()
    response = client.post(
        reverse("portal:contact_support", args=[integration.pk]),
        {"began": form["began"].value(), "reauthenticated": "yes", "forced_sync": "yes", "message": "Invoices stopped."},
    )
    request = SupportRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:general", args=[integration.pk]) + f"#request-{request.pk}"
    assert (request.issue, request.integration, request.message) == (None, integration, "Invoices stopped.")
    facts = dict(request.facts)
    assert facts["Problem began"].startswith(began)
    assert facts["Re-authentication tried"].startswith("yes (the customer's answer; the timeline shows: a re-authentication link")
    assert facts["Forced sync tried"].startswith("yes: a full sync (customer), failed with AUTH_EXPIRED")
    assert facts["Account mapping"] == "complete: 2 vendor accounts, each mapped or ignored"
    assert [h["id"] for h in request.history][:2] == [forced.pk, failed.pk]
    to_support = [m for m in mail.outbox if m.to == [settings.SUPPORT_EMAIL]]
    assert len(to_support) == 1 and "Problem began: " + began in to_support[0].body


@pytest.mark.django_db
def test_contact_support_without_a_message_changes_nothing(acme, log_in):
    tenant, _, victor, integration, _ = acme
    before = snapshot(tenant)
    response = log_in(victor).post(
        reverse("portal:contact_support", args=[integration.pk]),
        {"began": "Monday", "reauthenticated": "maybe", "forced_sync": "no", "message": " "},
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"reauthenticated", "message"}
    assert snapshot(tenant) == before
