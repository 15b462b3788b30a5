"""The console's help requests: the request's page, replying, notes, state and assignee, and the links to it.

Logged in as staff through the login backend, POSTing the page's forms,
following the redirect and reading the rows, the audit trail and the
admin's history back.
"""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.urls import reverse

from audit.models import AuditRecord
from issues.models import SupportMessage, SupportRequest
from issues.support import conversation
from tests.factories import UserFactory

State = SupportRequest.State
pytestmark = pytest.mark.django_db


def page_url(request):
    return reverse("admin:issues_supportrequest_change", args=[request.pk])


def text(response):
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def snapshot():
    return (
        list(SupportRequest.objects.order_by("pk").values()),
        list(SupportMessage.objects.order_by("pk").values()),
        AuditRecord.objects.count(),
        LogEntry.objects.count(),
        len(mail.outbox),
    )


def test_the_page_shows_what_was_asked_the_facts_and_the_history_as_tables(acme, asked, support_client):
    SupportRequest.objects.filter(pk=asked.pk).update(
        history=[
            {
                "id": 7,
                "state": "failed",
                "error_code": "AUTH_EXPIRED",
                "queued_at": "2026-11-20T09:00:00+00:00",
                "finished_at": "2026-11-20T09:00:04+00:00",
                "items_seen": 0,
            }
        ]
    )
    response = support_client.get(page_url(asked))
    assert response.status_code == 200
    content = response.content.decode()
    page = text(response)
    assert "Invoice 42 never arrives. What is wrong?" in page
    assert "grace@acme.example" in page and "Acme" in page
    assert reverse("admin:integrations_integration_change", args=[acme.integration.pk]) in content
    assert reverse("admin:issues_syncissue_change", args=[acme.issue.pk]) in content
    facts = re.search(r'id="sc-request-facts".*?</table>', content, re.DOTALL).group(0)
    assert "<th scope=\"row\">Problem began</th><td>2026-11-20 09:00 UTC</td>" in facts
    history = re.search(r'id="sc-request-history".*?</table>', content, re.DOTALL).group(0)
    assert "2026-11-20 09:00:00" in history and "AUTH_EXPIRED" in history
    assert "queued_at" not in content and "[{" not in content  # no raw JSON


def test_staff_reply_from_the_page_is_saved_emailed_and_audited(acme, asked, support_client, support_user, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = support_client.post(
            reverse("admin:issues_supportrequest_reply", args=[asked.pk]),
            {"kind": "reply", "body": "Please re-authenticate from the General tab.", "then_state": State.WAITING_ON_CUSTOMER},
            follow=True,
        )
    assert response.redirect_chain == [(page_url(asked), 302)]
    assert "Reply saved and emailed to grace@acme.example." in text(response)
    thread = re.search(r'id="sc-thread".*?</ol>', response.content.decode(), re.DOTALL).group(0)
    assert "Please re-authenticate from the General tab." in thread
    asked.refresh_from_db()
    assert (asked.state, asked.assignee) == (State.WAITING_ON_CUSTOMER, support_user)
    assert [m.to for m in mail.outbox] == [["grace@acme.example"]]
    assert mail.outbox[0].reply_to == ["support@localhost"]
    # The service's record says what changed (the admin's history is copied into the trail too).
    record = AuditRecord.objects.filter(actor=support_user, changes__has_key="reply").get()
    assert record.changes["state"] == ["new", "waiting_on_customer"]
    assert LogEntry.objects.get().change_message == "Reply saved and emailed to grace@acme.example."


def test_a_note_from_the_page_is_marked_and_never_reaches_the_customer(acme, asked, support_client, log_in, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = support_client.post(
            reverse("admin:issues_supportrequest_reply", args=[asked.pk]),
            {"kind": "note", "body": "Their IT rotated the key.", "then_state": State.RESOLVED},
            follow=True,
        )
    assert "Internal note added; the customer does not see it." in text(response)
    assert "internal note, never shown to the customer" in text(response)
    asked.refresh_from_db()
    assert asked.state == State.NEW  # a note leaves the state
    assert mail.outbox == []

    customer = log_in(acme.grace)
    for url in (
        reverse("portal:general", args=[acme.integration.pk]),
        reverse("portal:help", args=[acme.integration.pk, acme.issue.pk]),
        reverse("portal:support_request", args=[acme.integration.pk, asked.pk]),
        reverse("portal:issues", args=[acme.integration.pk]),
    ):
        page = customer.get(url)
        assert page.status_code == 200, url
        assert "rotated the key" not in page.content.decode(), url


def test_state_and_assignee_change_from_the_page(asked, support_client, support_user, engineering_user):
    response = support_client.post(
        reverse("admin:issues_supportrequest_update", args=[asked.pk]),
        {"state": State.IN_PROGRESS, "assignee": engineering_user.pk},
        follow=True,
    )
    assert "Changed state: new → in_progress; assignee: nobody → engineering." in text(response)
    asked.refresh_from_db()
    assert (asked.state, asked.assignee) == (State.IN_PROGRESS, engineering_user)
    record = AuditRecord.objects.filter(actor=support_user, changes__has_key="state").get()
    assert record.changes == {"state": ["new", "in_progress"], "assignee": [None, "engineering"]}

    again = support_client.post(
        reverse("admin:issues_supportrequest_update", args=[asked.pk]),
        {"state": State.IN_PROGRESS, "assignee": engineering_user.pk},
        follow=True,
    )
    assert "nothing changed" in text(again)


@pytest.mark.parametrize(
    ("view", "data", "says"),
    [
        ("reply", {"kind": "reply", "body": "  ", "then_state": "waiting_on_customer"}, "The reply was not saved"),
        ("reply", {"kind": "reply", "body": "Hi", "then_state": "closed"}, "The reply was not saved"),
        ("reply", {"kind": "shout", "body": "Hi", "then_state": "new"}, "The reply was not saved"),
        ("update", {"state": "closed", "assignee": ""}, "Nothing was changed"),
        ("update", {"state": "new", "assignee": "987654"}, "Nothing was changed"),
    ],
    ids=["empty reply", "unknown state after reply", "unknown kind", "unknown state", "unknown assignee"],
)
def test_wrong_input_is_a_400_that_says_why_and_changes_nothing(asked, support_client, view, data, says):
    before = snapshot()
    response = support_client.post(reverse(f"admin:issues_supportrequest_{view}", args=[asked.pk]), data)
    assert response.status_code == 400
    assert says in text(response)
    assert snapshot() == before


def test_a_customer_cannot_be_assigned(asked, support_client):
    customer = UserFactory(username="mallory")
    before = snapshot()
    response = support_client.post(
        reverse("admin:issues_supportrequest_update", args=[asked.pk]), {"state": "new", "assignee": customer.pk}
    )
    assert response.status_code == 400  # not among the choices: only active staff are
    assert snapshot() == before


def test_staff_without_the_permission_read_but_cannot_change(asked, staff_client, viewer_staff):
    client = staff_client(viewer_staff)
    page = client.get(page_url(asked))
    assert page.status_code == 200
    assert "Invoice 42 never arrives." in text(page)
    assert 'id="sc-reply"' not in page.content.decode()
    assert "needs the permission “Can change help request”" in text(page)

    before = snapshot()
    for view, data in (
        ("reply", {"kind": "reply", "body": "Hello", "then_state": "waiting_on_customer"}),
        ("reply", {"kind": "note", "body": "Hello", "then_state": "unchanged"}),
        ("update", {"state": "resolved", "assignee": ""}),
    ):
        response = client.post(reverse(f"admin:issues_supportrequest_{view}", args=[asked.pk]), data)
        assert response.status_code == 403, view
    assert snapshot() == before


def test_unknown_requests_and_methods(asked, support_client):
    assert support_client.get(reverse("admin:issues_supportrequest_change", args=[987654])).status_code == 404
    assert support_client.get("/admin/issues/supportrequest/x1/change/").status_code == 404
    assert support_client.post(page_url(asked), {"state": "resolved"}).status_code == 405
    assert support_client.get(reverse("admin:issues_supportrequest_reply", args=[asked.pk])).status_code == 405


def test_sending_a_failed_reply_again(acme, asked, support_client, support_user, django_capture_on_commit_callbacks):
    message = conversation.reply(asked.pk, author=support_user, body="Fixed.")
    SupportMessage.objects.filter(pk=message.pk).update(email_error="SMTPServerDisconnected: gone")
    page = support_client.get(page_url(asked))
    assert "Not emailed: SMTPServerDisconnected: gone" in text(page)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = support_client.post(
            reverse("admin:issues_supportrequest_send_again", args=[asked.pk, message.pk]), follow=True
        )
    assert "The reply was sent again" in text(response)
    assert [m.to for m in mail.outbox] == [["grace@acme.example"]]
    page = text(support_client.get(page_url(asked)))
    assert "Emailed " in page and "Not emailed" not in page
    # A message of another request is not found through this one.
    other = conversation.open_request(acme.integration, acme.victor, "Other")
    assert support_client.post(
        reverse("admin:issues_supportrequest_send_again", args=[other.pk, message.pk])
    ).status_code == 404


def test_requests_are_linked_from_the_integration_the_issue_and_the_dashboard(acme, asked, support_client, support_user):
    conversation.update(asked.pk, actor=support_user, assignee=support_user)
    resolved = conversation.open_request(acme.integration, acme.victor, "Fixed itself")
    conversation.update(resolved.pk, actor=support_user, state=State.RESOLVED)

    integration_page = support_client.get(reverse("admin:integrations_integration_change", args=[acme.integration.pk]))
    link = re.search(r'id="sc-help-requests" href="([^"]+)"', integration_page.content.decode()).group(1)
    listed = support_client.get(unescape(link))
    assert listed.status_code == 200
    assert [r.pk for r in listed.context["cl"].result_list] == [asked.pk]  # open ones of this integration

    issue_page = support_client.get(reverse("admin:issues_syncissue_change", args=[acme.issue.pk]))
    assert f'<a href="{page_url(asked)}">Request {asked.pk}</a> (New)' in issue_page.content.decode()

    dashboard = support_client.get(reverse("admin:index"))
    panel = re.search(r'id="sc-requests".*?</div>', dashboard.content.decode(), re.DOTALL).group(0)
    assert f'href="{page_url(asked)}"' in panel
    assert "Support" in text(dashboard)  # the assignee's name (the fixture's first name)
    assert f"Request {resolved.pk}" not in panel
    assert "All 1 open request" in text(dashboard)


def test_the_page_and_the_list_say_when_the_customer_asked_in_the_projects_words(acme, asked, support_client):
    """Both used timesince: "(0\xa0minutes ago)" for a request asked seconds ago, "2\xa0hours" in the list."""
    page = text(support_client.get(page_url(asked)))
    assert "UTC (just now)" in page
    assert "minutes ago" not in page

    SupportRequest.objects.filter(pk=asked.pk).update(created_at=asked.created_at - timedelta(hours=2, minutes=5))
    page = text(support_client.get(page_url(asked)))
    assert "UTC (2 hours 5 minutes ago)" in page
    listed = text(support_client.get(reverse("admin:issues_supportrequest_changelist")))
    assert "2 hours 5 minutes ago" in listed
