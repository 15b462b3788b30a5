"""The emails of a help request's conversation, each sent after the commit that saved what it tells.

- A new request or a customer's answer goes to SUPPORT_EMAIL (and to the
  assignee), with Reply-To the customer: answering it from a mail client
  writes to the customer.
- Support's reply goes to the customer who asked, signed "SyncConsole
  support" (who answered stays inside the console), with Reply-To
  SUPPORT_EMAIL: the customer's answer by email reaches support.

Internal notes are never emailed. Links are built from SITE_URL when the
email is sent. Each function takes an id and reads the rows afresh. A failed
send is logged and written on its message (`email_error`, shown in the
console, which offers to send it again); the message itself was committed
before and stays.
"""

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone

from issues.models import SupportMessage, SupportRequest

logger = logging.getLogger(__name__)
SIGNATURE = "SyncConsole support"


def tell_support_of_request(request_id):
    request = SupportRequest.objects.select_related("integration__tenant", "issue", "user", "assignee").get(
        pk=request_id
    )
    issue = request.issue
    if issue is not None:
        about = f"issue {issue.pk} ({issue.error_code_id}: {issue.item_label or issue.external_id or 'the whole sync'})"
        subject = f"[SyncConsole] Help requested: {issue.error_code_id} on {request.integration}"
    else:
        about = f"the integration {request.integration.name}"
        subject = f"[SyncConsole] Help requested: {request.integration}"
    facts = "".join(f"{label}: {value}\n" for label, value in request.facts)
    body = (
        f"{_who(request.user)} of {request.integration.tenant.name} asks for help with {about}.\n\n"
        f"{request.message}\n\n{facts + chr(10) if facts else ''}"
        f"Open it: {_admin_url(request)}\n"
        "Answer from the console to keep the conversation with the request.\n"
    )
    _send(subject, body, _support_recipients(request), reply_to=request.user.email)


def tell_support_of_answer(message_id):
    message = SupportMessage.objects.select_related("request__integration__tenant", "request__assignee", "author").get(
        pk=message_id
    )
    request = message.request
    subject = f"[SyncConsole] Customer answered: request {request.pk} on {request.integration}"
    body = (
        f"{_who(message.author)} of {request.integration.tenant.name} answered request {request.pk}:\n\n"
        f"{message.body}\n\nOpen it: {_admin_url(request)}\n"
    )
    author_email = message.author.email if message.author_id else ""
    _record(message, _send(subject, body, _support_recipients(request), reply_to=author_email))


def send_reply_to_customer(message_id):
    message = SupportMessage.objects.select_related("request__integration", "request__issue", "request__user").get(
        pk=message_id
    )
    if message.kind != SupportMessage.Kind.REPLY or not message.from_support:
        raise ValueError(f"Message {message_id} is not support's reply: only those are emailed to the customer.")
    request, customer = message.request, message.request.user
    if not customer.email:
        _record(message, f"{customer.get_username()} has no email address; the reply is only in the portal.")
        return
    url = settings.SITE_URL + reverse("portal:support_request", args=[request.integration_id, request.pk])
    about = f" ({request.issue.error_code_id})" if request.issue_id else ""
    body = (
        f"Hello {customer.first_name or customer.get_username()},\n\n"
        f"{SIGNATURE} answered your help request about {request.integration.name}{about}:\n\n"
        f"{message.body}\n\n"
        f"Read the whole conversation and answer here:\n{url}\n\n"
        "Answering this email reaches our support team too.\n\n"
        f"{SIGNATURE}\n"
    )
    subject = f"Re: your help request {request.pk} about {request.integration.name}"
    _record(message, _send(subject, body, [customer.email], reply_to=settings.SUPPORT_EMAIL))


def _send(subject, body, to, *, reply_to):
    """Send; None when the server took it, else the reason (logged)."""
    subject = " ".join(subject.split())  # a name with a line break cannot break the headers
    email = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, to, reply_to=[reply_to] if reply_to else None)
    try:
        email.send()
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("help request email %r to %s not sent: %s", subject, ", ".join(to), exc)
        return f"{exc.__class__.__name__}: {exc}"[:500] or "the mail server refused it"
    return None


def _record(message, error):
    if error:
        SupportMessage.objects.filter(pk=message.pk).update(email_error=error[:500])
    else:
        SupportMessage.objects.filter(pk=message.pk).update(emailed_at=timezone.now(), email_error="")


def _support_recipients(request):
    recipients = [settings.SUPPORT_EMAIL]
    if request.assignee_id and request.assignee.email and request.assignee.email not in recipients:
        recipients.append(request.assignee.email)
    return recipients


def _admin_url(request):
    return settings.SITE_URL + reverse("admin:issues_supportrequest_change", args=[request.pk])


def _who(user):
    if user is None:
        return "A former member"
    return f"{user.get_full_name() or user.get_username()} <{user.email}>"
