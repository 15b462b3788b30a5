"""Help requests as conversations: who may change them, which state follows, what the customer reads.

The services of issues/support/conversation.py, end to end through the
database: the message saved, the request's state and assignee, the audit
record, the email after commit (Django's test outbox here; the real SMTP
server in test_support_emails.py).
"""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from audit.models import AuditRecord
from issues.models import SupportMessage, SupportRequest
from issues.support import conversation, selectors
from tests.factories import UserFactory

State = SupportRequest.State
pytestmark = pytest.mark.django_db


def snapshot():
    return (
        list(SupportRequest.objects.order_by("pk").values()),
        list(SupportMessage.objects.order_by("pk").values()),
        AuditRecord.objects.count(),
        len(mail.outbox),
    )


def test_opening_a_request_tells_support_with_the_customer_to_reply_to(acme, asked, settings):
    assert (asked.state, asked.integration, asked.issue, asked.assignee) == (State.NEW, acme.integration, acme.issue, None)
    (email,) = mail.outbox
    assert email.to == [settings.SUPPORT_EMAIL]
    assert email.reply_to == ["grace@acme.example"]
    assert "Invoice 42 never arrives." in email.body
    assert "Problem began: 2026-11-20 09:00 UTC" in email.body
    record = AuditRecord.objects.get(action=AuditRecord.Action.CUSTOMER_ACTION)
    assert (record.actor, record.tenant_id, record.target) == (acme.grace, acme.tenant.pk, f"help request {asked.pk}")


def test_a_staff_reply_waits_on_the_customer_assigns_the_replier_and_is_emailed(
    acme, asked, support_user, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        message = conversation.reply(asked.pk, author=support_user, body="  Please re-authenticate.  ")

    asked.refresh_from_db()
    assert (asked.state, asked.assignee) == (State.WAITING_ON_CUSTOMER, support_user)
    assert (message.kind, message.from_support, message.body) == ("reply", True, "Please re-authenticate.")
    message.refresh_from_db()
    assert message.emailed_at is not None and message.email_error == ""
    (email,) = mail.outbox
    assert email.to == ["grace@acme.example"]
    record = AuditRecord.objects.filter(action=AuditRecord.Action.STAFF_ACTION).get()
    assert record.actor == support_user and record.tenant_id == acme.tenant.pk
    assert record.changes == {
        "reply": message.pk,
        "state": ["new", "waiting_on_customer"],
        "assignee": [None, "support"],
    }


def test_support_may_choose_the_state_after_a_reply_or_leave_it(asked, support_user, engineering_user):
    conversation.update(asked.pk, actor=support_user, assignee=engineering_user)
    conversation.reply(asked.pk, author=support_user, body="Fixed on our side.", then_state=State.RESOLVED)
    asked.refresh_from_db()
    assert (asked.state, asked.assignee) == (State.RESOLVED, engineering_user)  # an assignee is kept

    conversation.reply(asked.pk, author=support_user, body="One more thing.", then_state=None)
    asked.refresh_from_db()
    assert asked.state == State.RESOLVED


def test_a_note_is_for_support_only(acme, asked, support_user, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        note = conversation.add_note(asked.pk, author=support_user, body="Customer's key was rotated by their IT.")
        reply = conversation.reply(asked.pk, author=support_user, body="Could you re-authenticate?")

    assert [m.to for m in mail.outbox] == [["grace@acme.example"]]
    assert "rotated by their IT" not in mail.outbox[0].body
    asked.refresh_from_db()
    assert asked.state == State.WAITING_ON_CUSTOMER  # from the reply; the note changed nothing
    assert [m.pk for m in selectors.staff_thread(asked)] == [note.pk, reply.pk]
    (shown,) = selectors.open_requests_of_integration(acme.integration)
    assert [m.pk for m in shown.thread] == [reply.pk]
    (on_issue,) = selectors.requests_of_issue(acme.issue)
    assert [m.pk for m in on_issue.thread] == [reply.pk]
    latest = selectors.latest_request_per_issue(acme.integration, [acme.issue.pk])[acme.issue.pk]
    assert latest.last_support_reply == "Could you re-authenticate?"


def test_the_database_refuses_a_note_from_the_customer(asked, acme):
    with pytest.raises(IntegrityError), transaction.atomic():
        SupportMessage.objects.create(
            request=asked, kind="note", author=acme.grace, from_support=False, body="x", created_at=asked.created_at
        )


def test_a_customer_answer_moves_the_request_back_to_support(
    acme, asked, support_user, settings, django_capture_on_commit_callbacks
):
    conversation.reply(asked.pk, author=support_user, body="Which invoice number?")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        answer = conversation.answer(asked.pk, author=acme.victor, body="Invoice 42, from March.")
    asked.refresh_from_db()
    assert asked.state == State.IN_PROGRESS  # assigned: support is on it
    assert (answer.from_support, answer.author) == (False, acme.victor)
    (email,) = mail.outbox
    assert email.to == [settings.SUPPORT_EMAIL, "support@example.com"]  # support and the assignee
    assert email.reply_to == ["victor@acme.example"]
    assert AuditRecord.objects.filter(action=AuditRecord.Action.CUSTOMER_ACTION, actor=acme.victor).exists()


def test_an_answer_to_an_unassigned_request_makes_it_new_again(acme, asked, support_user):
    conversation.reply(asked.pk, author=support_user, body="Which invoice number?")
    conversation.update(asked.pk, actor=support_user, assignee=None)
    conversation.answer(asked.pk, author=acme.grace, body="Invoice 42.")
    asked.refresh_from_db()
    assert (asked.state, asked.assignee) == (State.NEW, None)


def test_a_resolved_request_takes_no_answer(acme, asked, support_user):
    conversation.update(asked.pk, actor=support_user, state=State.RESOLVED)
    before = snapshot()
    with pytest.raises(conversation.Refused) as refused:
        conversation.answer(asked.pk, author=acme.grace, body="It is back.")
    assert refused.value.status == 409
    assert "ask for help again" in refused.value.message
    assert snapshot() == before


@pytest.mark.parametrize("body", ["", "   \n ", "x" * (conversation.MAX_BODY + 1)], ids=["empty", "blank", "too long"])
def test_empty_or_too_long_messages_are_refused_and_change_nothing(acme, asked, support_user, body):
    before = snapshot()
    for call in (
        lambda: conversation.reply(asked.pk, author=support_user, body=body),
        lambda: conversation.add_note(asked.pk, author=support_user, body=body),
        lambda: conversation.answer(asked.pk, author=acme.grace, body=body),
    ):
        with pytest.raises(conversation.Refused) as refused:
            call()
        assert refused.value.status == 400 and "Nothing was saved" in refused.value.message
    assert snapshot() == before


def test_changing_a_request_needs_the_permission(acme, asked, viewer_staff):
    before = snapshot()
    customer = acme.grace
    for actor in (viewer_staff, customer):
        for call in (
            lambda: conversation.reply(asked.pk, author=actor, body="Hello"),
            lambda: conversation.add_note(asked.pk, author=actor, body="Hello"),
            lambda: conversation.update(asked.pk, actor=actor, state=State.RESOLVED),
        ):
            with pytest.raises(PermissionDenied, match="Can change help request"):
                call()
    assert snapshot() == before


def test_state_and_assignee_changes_are_checked_and_audited(asked, support_user, engineering_user):
    changes = conversation.update(asked.pk, actor=support_user, state=State.IN_PROGRESS, assignee=engineering_user)
    assert changes == {"state": ["new", "in_progress"], "assignee": [None, "engineering"]}
    assert conversation.update(asked.pk, actor=support_user, state=State.IN_PROGRESS, assignee=engineering_user) == {}

    before = snapshot()
    with pytest.raises(conversation.Refused, match="not an active staff member"):
        conversation.update(asked.pk, actor=support_user, assignee=UserFactory(username="mallory"))
    with pytest.raises(conversation.Refused, match="no state"):
        conversation.update(asked.pk, actor=support_user, state="closed")
    with pytest.raises(conversation.Refused) as missing:
        conversation.update(987654, actor=support_user, state=State.RESOLVED)
    assert missing.value.status == 404
    assert snapshot() == before
    assert AuditRecord.objects.filter(action=AuditRecord.Action.STAFF_ACTION).count() == 1


def test_the_dashboard_panel_lists_open_requests_oldest_first(acme, asked, support_user):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    newer = conversation.open_request(acme.integration, acme.victor, "Also broken", issue=None)
    resolved = conversation.open_request(acme.integration, acme.victor, "Fixed itself")
    SupportRequest.objects.filter(pk=asked.pk).update(created_at=now - timedelta(days=2))
    conversation.update(resolved.pk, actor=support_user, state=State.RESOLVED)
    conversation.update(newer.pk, actor=support_user, assignee=support_user)

    panel = selectors.open_requests_panel(now)
    assert [r.pk for r in panel.rows] == [asked.pk, newer.pk]
    assert panel.total == 2
    assert panel.rows[0].age >= timedelta(days=2)
    assert (panel.rows[0].assignee, panel.rows[1].assignee) == (None, support_user)
