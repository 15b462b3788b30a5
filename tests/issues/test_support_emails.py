"""The conversation's emails as a real SMTP server (aiosmtpd, tests/plugins/smtp.py) receives them.

Support's reply reaches the customer who asked, signed "SyncConsole support",
with Reply-To the support address; the customer's words reach support with
Reply-To the customer. Links are built from SITE_URL when the email is sent.
A mail server that is down loses no reply: the message is saved, the failure
is written on it, and sending again delivers it.
"""

import pytest

from issues.models import SupportMessage
from issues.support import conversation

pytestmark = pytest.mark.django_db

SUPPORT = "help@syncconsole.example"


@pytest.fixture(autouse=True)
def addresses(settings):
    settings.SUPPORT_EMAIL = SUPPORT
    settings.DEFAULT_FROM_EMAIL = "SyncConsole <noreply@syncconsole.example>"
    settings.SITE_URL = "https://console.example"


def test_a_new_request_reaches_support_with_the_customer_as_reply_to(acme, smtp_server, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = conversation.open_request(acme.integration, acme.grace, "Nothing syncs since Monday.")

    (received,) = smtp_server.messages
    assert received.rcpt_tos == [SUPPORT]
    assert received.email["Reply-To"] == "grace@acme.example"
    assert received.subject == "[SyncConsole] Help requested: Acme / Acme billing"
    assert "Nothing syncs since Monday." in received.text
    assert f"https://console.example/admin/issues/supportrequest/{request.pk}/change/" in received.text


def test_a_reply_reaches_the_customer_signed_by_support_with_support_as_reply_to(
    acme, asked, support_user, smtp_server, settings, django_capture_on_commit_callbacks
):
    support_user.first_name, support_user.last_name = "Sam", "Tucker"
    support_user.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = conversation.reply(asked.pk, author=support_user, body="Please re-authenticate: the key expired.")
    settings.SITE_URL = "https://support.example"  # links are built when the email goes out
    for callback in callbacks:
        callback()

    (received,) = smtp_server.messages
    assert received.rcpt_tos == ["grace@acme.example"]
    assert received.email["Reply-To"] == SUPPORT
    assert received.email["From"] == "SyncConsole <noreply@syncconsole.example>"
    assert received.subject == f"Re: your help request {asked.pk} about Acme billing"
    text = received.text
    assert text.startswith("Hello Grace,")
    assert "SyncConsole support answered your help request about Acme billing (ITEM_MISSING_FIELD)" in text
    assert "Please re-authenticate: the key expired." in text
    assert f"https://support.example/portal/integrations/{acme.integration.pk}/help-requests/{asked.pk}/" in text
    assert "Sam" not in text and "Tucker" not in text and support_user.email not in text
    message.refresh_from_db()
    assert message.emailed_at is not None and message.email_error == ""


def test_notes_are_never_emailed(acme, asked, support_user, smtp_server, django_capture_on_commit_callbacks):
    smtp_server.clear()
    with django_capture_on_commit_callbacks(execute=True):
        conversation.add_note(asked.pk, author=support_user, body="Their IT rotated the key; they don't know yet.")
    assert smtp_server.messages == []


def test_an_answer_reaches_support_and_the_assignee_with_the_customer_as_reply_to(
    acme, asked, support_user, smtp_server, django_capture_on_commit_callbacks
):
    conversation.reply(asked.pk, author=support_user, body="Which invoice?")
    smtp_server.clear()
    with django_capture_on_commit_callbacks(execute=True):
        answer = conversation.answer(asked.pk, author=acme.victor, body="Invoice 42 from March.")

    (received,) = smtp_server.messages
    assert sorted(received.rcpt_tos) == sorted([SUPPORT, "support@example.com"])
    assert received.email["Reply-To"] == "victor@acme.example"
    assert received.subject == f"[SyncConsole] Customer answered: request {asked.pk} on Acme / Acme billing"
    assert "Invoice 42 from March." in received.text
    answer.refresh_from_db()
    assert answer.emailed_at is not None


def test_a_mail_server_outage_loses_no_reply_and_sending_again_delivers_it(
    acme, asked, support_user, smtp_server, django_capture_on_commit_callbacks
):
    smtp_server.stop()
    with django_capture_on_commit_callbacks(execute=True):
        message = conversation.reply(asked.pk, author=support_user, body="Fixed: it syncs again.")

    message.refresh_from_db()
    assert message.body == "Fixed: it syncs again."  # saved before the email was tried
    assert message.emailed_at is None
    assert "ConnectionRefusedError" in message.email_error
    asked.refresh_from_db()
    assert asked.state == "waiting_on_customer"

    smtp_server.start()
    with django_capture_on_commit_callbacks(execute=True):
        conversation.send_again(message.pk, actor=support_user)
    (received,) = smtp_server.to("grace@acme.example")
    assert "Fixed: it syncs again." in received.text
    message.refresh_from_db()
    assert message.emailed_at is not None and message.email_error == ""


def test_a_customer_without_an_address_reads_the_reply_in_the_portal_only(
    acme, asked, support_user, smtp_server, django_capture_on_commit_callbacks
):
    acme.grace.email = ""
    acme.grace.save()
    smtp_server.clear()
    with django_capture_on_commit_callbacks(execute=True):
        message = conversation.reply(asked.pk, author=support_user, body="Answer")
    assert smtp_server.messages == []
    assert SupportMessage.objects.get(pk=message.pk).email_error == "grace has no email address; the reply is only in the portal."
